"""Streams between our nodes on loopback, as a user sees them."""

from __future__ import annotations

import asyncio

import pytest

import mosaik

from waiting import until


async def test_json_datums_arrive_in_order_through_every_receive_style(
    pair: tuple[mosaik.Network, mosaik.Network],
) -> None:
    a, b = pair
    producer = a.streams.producer("sensors", codec="json")
    consumer = b.streams.consumer("sensors", codec="json")
    await asyncio.wait_for(consumer.when.subscribed(1), 10)
    await asyncio.wait_for(producer.when.subscribed(1), 10)
    assert producer.is_online
    await producer.send({"t": 0})
    assert await producer.send_many({"t": i} for i in range(1, 100)) == 99
    assert await asyncio.wait_for(consumer.recv(), 10) == {"t": 0}
    batch = await asyncio.wait_for(consumer.recv_batch(10), 10)
    assert batch == [{"t": i} for i in range(1, 1 + len(batch))]
    seen = len(batch)
    async for item in consumer:
        assert item == {"t": seen + 1}
        seen += 1
        if seen == 99:
            break
    assert producer.stats.datums == 100 and consumer.stats.datums == 100
    assert producer.stats.bytes == consumer.stats.bytes > 0
    assert "1 consumers" in repr(producer) and "1 producers" in repr(consumer)


async def test_str_codec_is_the_rust_string_layout(
    pair: tuple[mosaik.Network, mosaik.Network],
) -> None:
    a, b = pair
    producer = a.streams.producer("alloc::string::String", codec="str")
    raw = b.streams.consumer("alloc::string::String", codec="raw")
    assert producer.stream_id == mosaik.id_of("alloc::string::String").hex()
    await asyncio.wait_for(raw.when.subscribed(1), 10)
    await producer.send("héllo")
    payload = await asyncio.wait_for(raw.recv(), 10)
    assert payload == b"\x06" + "héllo".encode()


async def test_offline_try_send_and_wrong_types() -> None:
    async with mosaik.Network.create("streams-alone", local=True) as net:
        producer = net.streams.producer("lonely", codec="str")
        with pytest.raises(mosaik.Offline):
            producer.try_send("nobody listens")
        with pytest.raises(TypeError, match="^datum"):
            producer.try_send(b"not a str")  # checked before the offline check
        with pytest.raises(TypeError, match="^datum"):
            await producer.send(42)
        consumer = net.streams.consumer("lonely", codec="str")
        with pytest.raises(mosaik.Empty):
            consumer.try_recv()
        with pytest.raises(ValueError, match="^stream"):
            net.streams.producer("lonely")  # one producer per stream per node
        await producer.close()
        with pytest.raises(mosaik.Closed):
            await producer.send("too late")
        # A Rust type name as the codec: an i64 stream (Rust `produce::<i64>`).
        numbers = net.streams.producer("numbers", codec="i64")
        with pytest.raises(TypeError, match="^datum: expected a value of Rust type i64"):
            numbers.try_send("not a number")
        with pytest.raises(ValueError, match="^datum: .* out of range for i64"):
            numbers.try_send(2**63)


async def test_a_datum_over_the_frame_limit_is_refused_before_anything_is_sent() -> None:
    # Consumers refuse frames over 256 MiB; a producer that queued one would
    # lose it and the subscription, so it refuses the datum up front.
    async with mosaik.Network.create("streams-big", local=True) as net:
        producer = net.streams.producer("big", codec="raw")
        huge = bytes(256 * 1024 * 1024 + 1)  # calloc'd: its pages are never touched
        with pytest.raises(ValueError, match=r"^datum: a datum of 268435457 bytes exceeds"):
            producer.try_send(huge)
        with pytest.raises(ValueError, match=r"^datums\[1\]: a datum of 268435457 bytes"):
            await producer.send_many([b"fine", huge])
        assert producer.stats.datums == 0


async def test_closing_the_producer_ends_iteration_of_nothing_but_its_subscription(
    pair: tuple[mosaik.Network, mosaik.Network],
) -> None:
    a, b = pair
    producer = a.streams.producer("ticks", codec="bytes")
    consumer = b.streams.consumer("ticks", codec="bytes")
    await asyncio.wait_for(consumer.when.subscribed(1), 10)
    await producer.send(b"last")
    await producer.close()
    assert await asyncio.wait_for(consumer.recv(), 10) == b"last"
    await consumer.close()
    with pytest.raises(mosaik.Closed):
        await asyncio.wait_for(consumer.recv(), 10)


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"codec": "yaml"}, ValueError, "codec"),
        ({"codec": 3}, TypeError, "codec"),
        ({"buffer_size": 0}, ValueError, "buffer_size"),
        ({"buffer_size": "big"}, TypeError, "buffer_size"),
        ({"lagging": "sometimes"}, ValueError, "lagging"),
        ({"max_consumers": 0}, ValueError, "max_consumers"),
        ({"max_subscriptions_per_peer": 0}, ValueError, "max_subscriptions_per_peer"),
        ({"max_subscriptions_per_peer": 1.5}, TypeError, "max_subscriptions_per_peer"),
    ],
)
async def test_bad_producer_arguments_are_named(
    net: mosaik.Network, kwargs: dict[str, object], error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=rf"^{argument}\b"):
        net.streams.producer("bad", **kwargs)  # type: ignore[arg-type]


async def test_bad_consumer_arguments_are_named(net: mosaik.Network) -> None:
    with pytest.raises(ValueError, match="^queue_size"):
        net.streams.consumer("bad", queue_size=0)
    with pytest.raises(ValueError, match="^queue_bytes"):
        net.streams.consumer("bad", queue_bytes=0)
    with pytest.raises(TypeError, match="^stream"):
        net.streams.consumer(5)  # type: ignore[arg-type]


async def test_one_peer_holds_at_most_max_subscriptions_per_peer(
    pair: tuple[mosaik.Network, mosaik.Network],
) -> None:
    a, b = pair
    producer = a.streams.producer("per-peer", codec="json", max_subscriptions_per_peer=1)
    first = b.streams.consumer("per-peer", codec="json")
    await asyncio.wait_for(first.when.subscribed(1), 10)
    second = b.streams.consumer("per-peer", codec="json")
    await until(
        lambda: producer.refusals.get("peer_limit", 0) >= 1, timeout=10, what="a peer_limit refusal"
    )
    assert len(producer.consumers) == 1 and not second.is_online
    await first.close()
    await asyncio.wait_for(second.when.subscribed(1), 10)  # the seat is free again


async def test_queue_bytes_holds_the_producer_back_instead_of_buffering(
    pair: tuple[mosaik.Network, mosaik.Network],
) -> None:
    a, b = pair
    producer = a.streams.producer("bytes-budget", codec="bytes", lagging="block", buffer_size=16)
    consumer = b.streams.consumer("bytes-budget", codec="bytes", queue_bytes=64 * 1024)
    await asyncio.wait_for(producer.when.subscribed(1), 10)
    datum = bytes(16 * 1024)
    sending = asyncio.ensure_future(producer.send_many([datum] * 400))  # 6.4 MB
    # The consumer reads nothing: what waits unread stays near the budget,
    # and the rest is held back (QUIC flow control, then the producer's buffer).
    await until(lambda: consumer.stats.datums >= 4, timeout=10, what="the first datums")
    for _ in range(50):
        await asyncio.sleep(0.01)
    assert not sending.done()
    assert consumer.stats.datums < 100, consumer.stats
    received = 0
    while received < 400:
        received += len(await asyncio.wait_for(consumer.recv_batch(64), 10))
    assert await asyncio.wait_for(sending, 10) == 400


async def test_a_cancelled_send_is_never_delivered(
    pair: tuple[mosaik.Network, mosaik.Network],
) -> None:
    from mosaik import _mosaik

    a, b = pair
    producer = a.streams.producer("withdraw", codec="str")
    baseline = _mosaik._inflight()
    pending = asyncio.create_task(producer.send("withdrawn"))  # offline: it waits
    await until(lambda: _mosaik._inflight() > baseline, what="the send to wait in Rust")
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    await until(lambda: _mosaik._inflight() == baseline, what="the send to be dropped")
    consumer = b.streams.consumer("withdraw", codec="str")
    await asyncio.wait_for(producer.when.subscribed(1), 10)
    await producer.send("delivered")
    assert await asyncio.wait_for(consumer.recv(), 10) == "delivered"
    with pytest.raises(mosaik.Empty):
        consumer.try_recv()
