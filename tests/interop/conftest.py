"""Interop tests: our nodes against a real mosaik 0.3.13 node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import mosaik

from reference_peer import ReferencePeer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/interop/" in str(item.path):
            item.add_marker(pytest.mark.interop)


@pytest.fixture
async def rust_node(reference_peer: ReferencePeer) -> dict[str, Any]:
    """A real mosaik node of network "demo", tagged "api", on a local relay."""
    relay = await reference_peer.ask({"cmd": "relay"})
    started = await reference_peer.ask(
        {"cmd": "start", "network": "demo", "relay": relay["url"], "tags": ["api"]}
    )
    started["relay"] = relay["url"]
    return started


@pytest.fixture
async def our_node(rust_node: dict[str, Any]) -> AsyncIterator[mosaik.Network]:
    """One of our nodes of the same network, tagged "python", reaching the
    mosaik node directly on loopback.

    Not on the relay: iroh 0.97 may send a node's second connection to a peer
    over the relay path alone when the first was made less than 5 s earlier
    ("not holepunching: no new addresses"), and a relay connection a few
    hundred ms old then stalls it for seconds (seen in ~10 % of fresh nodes;
    never without a relay, 0 in 60). `test_interop_relay.py` covers the relay.
    """
    async with mosaik.Network.create("demo", local=True, tags=("python",)) as net:
        yield net
