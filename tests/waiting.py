"""Waiting on state that has no event of its own (native counters, logs)."""

from __future__ import annotations

import asyncio
from typing import Callable


async def until(predicate: Callable[[], bool], *, timeout: float = 5.0, what: str = "") -> None:
    """Returns as soon as ``predicate()`` holds; fails after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # noqa: ASYNC110 -- polled state has no event to await
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.01)
