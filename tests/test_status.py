"""Status as mosaik reports it: a node online, catalog snapshots, producers
and consumers going offline, edge-triggered waits, what a channel and a peer
say about themselves."""

from __future__ import annotations

import asyncio
import time

import pytest

import mosaik

WAIT = 10.0


async def test_a_local_node_is_online_at_once_and_not_after_close() -> None:
    net = await mosaik.Network.create("status-online", local=True)
    await asyncio.wait_for(net.online(), 1)
    await net.close()
    with pytest.raises(mosaik.Closed):
        await asyncio.wait_for(net.online(), 1)


async def test_watch_yields_the_catalog_now_then_after_each_change() -> None:
    async with mosaik.Network.create("status-watch", local=True) as a:
        watch = a.discovery.watch()
        first = await asyncio.wait_for(watch.__anext__(), WAIT)
        assert first == []
        b = await mosaik.Network.create("status-watch", local=True, bootstrap=[a.address])
        try:
            with_b = await asyncio.wait_for(watch.__anext__(), WAIT)
            assert [p.peer_id for p in with_b] == [b.peer_id]
            assert isinstance(with_b, mosaik.PeerList)
            # b says goodbye on gossip, which it joins once its bootstrap
            # sync has answered: a b closed before that is only forgotten
            # at purge_after, as in mosaik.
            await b.discovery.wait_for_peers(1, timeout=WAIT)
        finally:
            await b.close()

        async def until_gone() -> mosaik.PeerList:
            async for snapshot in watch:
                if not snapshot:
                    return snapshot
            raise AssertionError("the watch ended before b departed")

        # A graceful close is seen as a departure within 5 s on loopback.
        assert await asyncio.wait_for(until_gone(), WAIT) == []


async def test_producer_and_consumer_go_offline_when_the_other_side_leaves(
    pair: tuple[mosaik.Network, mosaik.Network],
) -> None:
    a, b = pair
    producer = a.streams.producer("offline", codec="json")
    consumer = b.streams.consumer("offline", codec="json")
    assert not consumer.is_online
    await asyncio.wait_for(consumer.when.online(), WAIT)
    await asyncio.wait_for(producer.when.online(), WAIT)
    assert consumer.is_online and producer.is_online
    producer_offline = asyncio.ensure_future(producer.when.offline())
    consumer_offline = asyncio.ensure_future(consumer.when.unsubscribed())
    await asyncio.sleep(0)
    assert not producer_offline.done() and not consumer_offline.done()
    await consumer.close()
    await asyncio.wait_for(producer_offline, WAIT)
    assert not producer.is_online
    await producer.close()
    await asyncio.wait_for(consumer_offline, WAIT)
    assert not consumer.is_online


async def test_next_subscription_waits_for_a_connection_made_after_the_call(
    pair: tuple[mosaik.Network, mosaik.Network],
) -> None:
    a, b = pair
    consumer = b.streams.consumer("edges", codec="json")
    first = a.streams.producer("edges", codec="json")
    await asyncio.wait_for(consumer.when.subscribed(1), WAIT)
    # Already connected: a level-triggered wait returns, the edge does not.
    await asyncio.wait_for(consumer.when.online(), 1)
    reconnect = asyncio.ensure_future(consumer.when.next_subscription())
    watcher = asyncio.ensure_future(first.when.next_subscription())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not reconnect.done() and not watcher.done()
    await first.close()
    await asyncio.wait_for(consumer.when.offline(), WAIT)
    assert not reconnect.done()
    second = a.streams.producer("edges", codec="json")
    await asyncio.wait_for(reconnect, WAIT)
    await second.close()
    watcher.cancel()
    with pytest.raises(ValueError, match="maximum"):
        await consumer.when.unsubscribed(-1)


async def test_a_channel_names_its_peer_and_how_long_it_has_been_connected(
    pair: tuple[mosaik.Network, mosaik.Network],
) -> None:
    a, b = pair
    producer = a.streams.producer("channels", codec="json")
    consumer = b.streams.consumer("channels", codec="json")
    await asyncio.wait_for(producer.when.subscribed(1), WAIT)
    await asyncio.wait_for(consumer.when.subscribed(1), WAIT)
    [to_consumer] = producer.consumers
    [to_producer] = consumer.producers
    assert to_consumer.peer is not None and to_consumer.peer.peer_id == b.peer_id
    assert to_producer.peer is not None and to_producer.peer.peer_id == a.peer_id
    assert to_producer.peer.produces("channels")
    for channel in (to_consumer, to_producer):
        assert channel.state == "connected"
        assert channel.uptime is not None and 0 <= channel.uptime < WAIT


async def test_peer_info_has_protocol_version_groups_and_uptime(
    pair: tuple[mosaik.Network, mosaik.Network],
) -> None:
    a, b = pair
    group = a.groups.join("status-group")
    try:

        async def lists_the_group() -> mosaik.PeerInfo:
            async for snapshot in b.discovery.watch():
                for peer in snapshot:
                    if peer.peer_id == a.peer_id and peer.in_group(group.group_id):
                        return peer
            raise AssertionError("the watch ended")

        peer = await asyncio.wait_for(lists_the_group(), WAIT)
        assert group.group_id in peer.groups
        assert peer.protocol_version == "0.3.13"
        assert peer.started_at <= peer.updated_at <= time.time() + 1
        assert 0 <= peer.uptime < 600
    finally:
        await group.close()
