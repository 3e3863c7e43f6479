"""Interop tests: our nodes against a real mosaik 0.3.13 node."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/interop/" in str(item.path):
            item.add_marker(pytest.mark.interop)
