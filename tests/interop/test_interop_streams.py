"""Streams between our nodes and a real mosaik 0.3.13 node, both directions,
with Rust's default stream ids (the type names) and byte-compatible codecs."""

from __future__ import annotations

import asyncio
from typing import Any

import mosaik

from reference_peer import ReferencePeer
from waiting import until

STRING = "alloc::string::String"
VEC_U8 = "alloc::vec::Vec<u8>"


async def test_a_rust_producer_feeds_our_consumer(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    made = await reference_peer.ask({"cmd": "produce", "type": "string"})
    assert made["stream_id"] == mosaik.id_of(STRING).hex()
    await our_node.discovery.sync_with(rust_node["address"])
    consumer = our_node.streams.consumer(STRING, codec="str")
    await asyncio.wait_for(consumer.when.subscribed(1), 15)
    items = [f"datum {i} ✓" for i in range(100)]
    await reference_peer.ask({"cmd": "send", "stream_id": made["stream_id"], "items": items})
    received = [await asyncio.wait_for(consumer.recv(), 10) for _ in items]
    assert received == items


async def test_our_producer_feeds_a_rust_consumer(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    producer = our_node.streams.producer(STRING, codec="str")
    await until(lambda: our_node.discovery.me().produces(STRING), what="our entry to list it")
    made = await reference_peer.ask({"cmd": "consume", "type": "string"})
    await reference_peer.ask({"cmd": "sync", "ticket": our_node.address})
    await asyncio.wait_for(producer.when.subscribed(1), 15)
    items = [f"from python {i}" for i in range(100)]
    assert await producer.send_many(items) == 100
    got = await reference_peer.ask(
        {"cmd": "received", "stream_id": made["stream_id"], "count": 100, "timeout_ms": 10000}
    )
    assert got["items"] == items


async def test_bytes_cross_as_vec_u8_both_ways(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    rust_made = await reference_peer.ask({"cmd": "produce", "type": "bytes"})
    assert rust_made["stream_id"] == mosaik.id_of(VEC_U8).hex()
    await our_node.discovery.sync_with(rust_node["address"])
    consumer = our_node.streams.consumer(VEC_U8, codec="bytes")
    await asyncio.wait_for(consumer.when.subscribed(1), 15)
    payloads = [bytes(range(n)) for n in (0, 1, 127, 128, 255)]
    await reference_peer.ask(
        {
            "cmd": "send",
            "stream_id": rust_made["stream_id"],
            "items_hex": [p.hex() for p in payloads],
        }
    )
    assert [await asyncio.wait_for(consumer.recv(), 10) for _ in payloads] == payloads


async def test_our_bytes_producer_feeds_a_rust_vec_u8_consumer(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    producer = our_node.streams.producer(VEC_U8, codec="bytes")
    await until(lambda: our_node.discovery.me().produces(VEC_U8), what="our entry to list it")
    made = await reference_peer.ask({"cmd": "consume", "type": "bytes"})
    await reference_peer.ask({"cmd": "sync", "ticket": our_node.address})
    await asyncio.wait_for(producer.when.subscribed(1), 15)
    payloads = [bytes(range(n)) for n in (0, 1, 127, 128, 255)] + [b"\x00" * 70_000]
    await producer.send_many(payloads)
    got = await reference_peer.ask(
        {"cmd": "received", "stream_id": made["stream_id"], "count": len(payloads)}
    )
    assert [bytes.fromhex(h) for h in got["items_hex"]] == payloads
    # mosaik's byte count matches ours: the encoded datum, varint prefix included.
    [channel] = producer.consumers
    assert channel.stats.bytes == sum(
        len(p) + (1 if len(p) < 128 else 2 if len(p) < 16384 else 3) for p in payloads
    )


async def test_python_and_rust_producers_feed_consumers_of_both_languages(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    other_rust = ReferencePeer()
    try:
        other = await other_rust.ask(
            {"cmd": "start", "network": "demo", "relay": rust_node["relay"], "tags": ["reader"]}
        )
        async with mosaik.Network.create("demo", local=True) as our_reader:
            # Everyone meets everyone through catalog syncs.
            for ours in (our_node, our_reader):
                await ours.discovery.sync_with(rust_node["address"])
                await ours.discovery.sync_with(other["address"])
            await our_reader.discovery.sync_with(our_node.address)
            await other_rust.sync(rust_node["address"])

            rust_made = await reference_peer.ask({"cmd": "produce", "type": "string"})
            ours_producer = our_node.streams.producer(STRING, codec="str")
            await until(lambda: our_node.discovery.me().produces(STRING), what="our stream listed")
            for peer in (reference_peer, other_rust):
                await peer.ask({"cmd": "sync", "ticket": our_node.address})
            our_consumer = our_reader.streams.consumer(STRING, codec="str")
            await other_rust.ask({"cmd": "consume", "type": "string"})
            await asyncio.wait_for(our_consumer.when.subscribed(2), 20)
            await other_rust.ask(
                {"cmd": "wait_producers", "stream_id": rust_made["stream_id"], "minimum": 2}
            )

            from_rust = [f"rust {i}" for i in range(50)]
            from_python = [f"python {i}" for i in range(50)]
            await asyncio.gather(
                reference_peer.ask(
                    {"cmd": "send", "stream_id": rust_made["stream_id"], "items": from_rust}
                ),
                ours_producer.send_many(from_python),
            )
            ours_got: list[str] = []
            while len(ours_got) < 100:
                ours_got.extend(await asyncio.wait_for(our_consumer.recv_batch(), 15))
            rust_got = (
                await other_rust.ask(
                    {"cmd": "received", "stream_id": rust_made["stream_id"], "count": 100}
                )
            )["items"]
            for got in (ours_got, rust_got):
                assert [x for x in got if x.startswith("rust")] == from_rust
                assert [x for x in got if x.startswith("python")] == from_python
    finally:
        other_rust.close()


async def test_a_rust_consumer_recovers_after_our_producer_restarts(
    reference_peer: ReferencePeer, rust_node: dict[str, Any]
) -> None:
    key = bytes(range(32))
    made = await reference_peer.ask({"cmd": "consume", "type": "string"})
    for run in range(2):
        async with mosaik.Network.create("demo", local=True, secret_key=key) as ours:
            producer = ours.streams.producer(STRING, codec="str")
            await until(lambda: ours.discovery.me().produces(STRING), what="our stream listed")
            await ours.discovery.sync_with(rust_node["address"])
            await asyncio.wait_for(producer.when.subscribed(1), 20)
            items = [f"run {run} datum {i}" for i in range(20)]
            await producer.send_many(items)
            got = await reference_peer.ask(
                {"cmd": "received", "stream_id": made["stream_id"], "count": 20}
            )
            assert got["items"] == items
