"""Discovery between our nodes on loopback, as a user sees it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable

import pytest

import mosaik
from mosaik import DiscoveryEvent

FAST = mosaik.DiscoveryConfig(purge_after=3.0, announce_interval=1.0)


async def next_event(
    events: AsyncIterator[DiscoveryEvent],
    kind: str,
    peer_id: str,
    timeout: float = 5.0,
    where: Callable[[mosaik.PeerInfo], bool] = lambda _: True,
) -> DiscoveryEvent:
    """The next event of ``kind`` about ``peer_id`` whose entry satisfies ``where``
    (entries are re-signed often, so "updated" also comes without changes)."""

    async def find() -> DiscoveryEvent:
        async for event in events:
            if event.kind == kind and event.peer.peer_id == peer_id and where(event.peer):
                return event
        raise AssertionError("event stream ended")

    return await asyncio.wait_for(find(), timeout)


async def test_a_bootstrapped_node_and_its_bootstrap_find_each_other() -> None:
    async with (
        mosaik.Network.create("disc", local=True, tags=("api",)) as a,
        mosaik.Network.create("disc", local=True, bootstrap=[a.address]) as b,
    ):
        (seen_by_b,) = await b.discovery.wait_for_peers(1, timeout=10)
        (seen_by_a,) = await a.discovery.wait_for_peers(1, timeout=10)
        assert seen_by_b.peer_id == a.peer_id and seen_by_b.has_tag("api")
        assert repr(seen_by_b).startswith(f"<PeerInfo {a.peer_id[:10]} 1 tag, 0 streams, updated")
        assert seen_by_a.peer_id == b.peer_id and not seen_by_a.has_tag("api")
        assert not seen_by_b.produces("sensors")
        assert b.discovery.me().peer_id == b.peer_id
        assert "1 peers" in repr(b.discovery)


async def test_events_report_discovery_tag_changes_and_departure() -> None:
    async with mosaik.Network.create("disc-events", local=True) as a:
        events = a.discovery.events()
        c = await mosaik.Network.create("disc-events", local=True, bootstrap=[a.address])
        try:
            discovered = await next_event(events, "discovered", c.peer_id)
            assert discovered.peer.address
            assert await c.discovery.add_tags("db")
            await next_event(events, "updated", c.peer_id, where=lambda p: p.has_tag("db"))
            assert not await c.discovery.add_tags("db"), "adding a tag twice changes nothing"
            assert await c.discovery.remove_tags("db")
            await next_event(events, "updated", c.peer_id, where=lambda p: not p.has_tag("db"))
        finally:
            started = time.monotonic()
            await c.close()
        await next_event(events, "departed", c.peer_id, timeout=5.0)
        assert time.monotonic() - started < 5.0
        assert all(p.peer_id != c.peer_id for p in a.discovery.peers())


async def test_event_iteration_ends_when_the_node_closes() -> None:
    a = await mosaik.Network.create("disc-end", local=True)
    events = a.discovery.events()
    consumer = asyncio.ensure_future(anext_or_end(events))
    await a.close()
    assert await asyncio.wait_for(consumer, 5) == "ended"


async def anext_or_end(events: AsyncIterator[DiscoveryEvent]) -> str:
    async for _ in events:
        return "event"
    return "ended"


async def test_sync_with_a_peer_of_another_network_imports_nothing() -> None:
    async with (
        mosaik.Network.create("net-one", local=True) as a,
        mosaik.Network.create("net-two", local=True) as b,
    ):
        assert await b.discovery.sync_with(a.address) == 0
        assert b.discovery.peers() == []
        assert b.discovery.rejections.get("other_network") == 1


async def test_sync_with_learns_the_whole_catalog() -> None:
    async with (
        mosaik.Network.create("disc-sync", local=True) as a,
        mosaik.Network.create("disc-sync", local=True, bootstrap=[a.address]) as b,
    ):
        await a.discovery.wait_for_peers(1, timeout=10)
        async with mosaik.Network.create("disc-sync", local=True) as c:
            # How many it took depends on a sync `a` starts back at the same time;
            # what counts is that afterwards c knows the whole catalog.
            await c.discovery.sync_with(a.address)
            assert {p.peer_id for p in c.discovery.peers()} == {a.peer_id, b.peer_id}


async def test_wait_for_peers_times_out() -> None:
    async with mosaik.Network.create("disc-lonely", local=True) as a:
        with pytest.raises(asyncio.TimeoutError):
            await a.discovery.wait_for_peers(1, timeout=0.2)
        assert await a.discovery.wait_for_peers(0) == []


async def test_a_killed_node_leaves_by_staleness() -> None:
    async with mosaik.Network.create("disc-crash", local=True, discovery=FAST) as observer:
        script = textwrap.dedent(
            f"""
            import asyncio, mosaik
            async def main():
                net = await mosaik.Network.create("disc-crash", local=True,
                                                  bootstrap=[{observer.address!r}])
                await net.discovery.wait_for_peers(1, timeout=10)
                print(net.peer_id, flush=True)
                await asyncio.Event().wait()
            asyncio.run(main())
            """
        )
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert child.stdout is not None
            peer_id = (await asyncio.wait_for(child.stdout.readline(), 20)).decode().strip()
            assert len(peer_id) == 64, peer_id
            events = observer.discovery.events()
            await observer.discovery.wait_for_peers(1, timeout=10)
            os.kill(child.pid, signal.SIGKILL)
            started = time.monotonic()
            await next_event(events, "departed", peer_id, timeout=10)
            # purge_after is 3 s; the entry was at most ~1 s old when killed.
            assert time.monotonic() - started < 5
        finally:
            if child.returncode is None:
                child.kill()
            await child.wait()


@pytest.mark.parametrize(
    ("config", "error", "argument"),
    [
        (mosaik.DiscoveryConfig(purge_after=0), ValueError, "purge_after"),
        (mosaik.DiscoveryConfig(announce_interval=0.001), ValueError, "announce_interval"),
        (mosaik.DiscoveryConfig(purge_after=1.0, announce_interval=2.0), ValueError, "purge_after"),
        (mosaik.DiscoveryConfig(announce_jitter=2), ValueError, "announce_jitter"),
        (mosaik.DiscoveryConfig(events_backlog=0), ValueError, "events_backlog"),
        (mosaik.DiscoveryConfig(sync_timeout="5"), TypeError, "sync_timeout"),  # type: ignore[arg-type]
        ({"purge_after": 3}, TypeError, "discovery"),
    ],
)
async def test_bad_discovery_settings_are_named(
    config: object, error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=rf"^{argument}\b"):
        await mosaik.Network.create("demo", local=True, discovery=config)  # type: ignore[arg-type]


async def test_bad_discovery_arguments_are_named(net: mosaik.Network) -> None:
    with pytest.raises(TypeError, match="^n"):
        await net.discovery.wait_for_peers("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^n"):
        await net.discovery.wait_for_peers(-1)
    with pytest.raises(ValueError, match="^address"):
        await net.discovery.sync_with("nope")
    with pytest.raises(TypeError, match="^names"):
        await net.discovery.add_tags(3)  # type: ignore[arg-type]
