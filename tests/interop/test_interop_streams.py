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
