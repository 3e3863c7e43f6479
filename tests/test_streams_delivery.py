"""What stream users rely on: who receives what, in which order, what is lost
and when, and how subscriptions start and end. Several real nodes on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest

import mosaik

from waiting import until

WAIT = 15.0
#: A consumer that retries quickly, so tests about reconnecting stay short.
FAST_RETRY = mosaik.Backoff(initial=0.05, factor=1.5, max_delay=0.2, jitter=False)


@contextlib.asynccontextmanager
async def cluster(
    name: str, tags: Sequence[tuple[str, ...]]
) -> AsyncIterator[list[mosaik.Network]]:
    """One node per entry of ``tags``, all bootstrapped from the first, all met."""
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(
            mosaik.Network.create(name, local=True, tags=tags[0])
        )
        nodes = [first]
        for node_tags in tags[1:]:
            node = mosaik.Network.create(
                name, local=True, tags=node_tags, bootstrap=[first.address]
            )
            nodes.append(await stack.enter_async_context(node))
        await asyncio.gather(
            *(n.discovery.wait_for_peers(len(nodes) - 1, timeout=WAIT) for n in nodes)
        )
        yield nodes


async def wait_advertised(node: mosaik.Network, stream: str, producers: int) -> None:
    """Until ``node`` has seen ``producers`` peers advertise ``stream``."""
    await until(
        lambda: sum(p.produces(stream) for p in node.discovery.peers()) >= producers,
        timeout=WAIT,
        what=f"{producers} producers of {stream!r} in the catalog",
    )


async def test_fan_out_reaches_every_consumer_in_order() -> None:
    async with cluster("fan-out", [()] * 4) as (source, *readers):
        producer = source.streams.producer("ticks", codec="json", lagging="block")
        consumers = [r.streams.consumer("ticks", codec="json") for r in readers]
        await asyncio.wait_for(producer.when.subscribed(3), WAIT)
        sent = asyncio.create_task(producer.send_many(range(2000)))

        async def read_all(consumer: mosaik.Consumer) -> list[int]:
            got: list[int] = []
            while len(got) < 2000:
                got.extend(await consumer.recv_batch(500))
            return got

        results = await asyncio.wait_for(asyncio.gather(*(read_all(c) for c in consumers)), WAIT)
        assert await sent == 2000
        assert all(got == list(range(2000)) for got in results)
        assert [len(producer.consumers)] == [3]
        assert {c.peer_id for c in producer.consumers} == {r.peer_id for r in readers}


async def test_a_consumer_hears_every_producer_each_in_order() -> None:
    async with cluster("fan-in", [()] * 3) as (left, right, reader):
        producers = [n.streams.producer("events", codec="json") for n in (left, right)]
        consumer = reader.streams.consumer("events", codec="json")
        await asyncio.wait_for(consumer.when.subscribed(2), WAIT)
        await asyncio.gather(
            *(p.send_many([[i, n] for n in range(500)]) for i, p in enumerate(producers))
        )
        got: list[list[int]] = []
        while len(got) < 1000:
            got.extend(await asyncio.wait_for(consumer.recv_batch(), WAIT))
        for i in range(2):
            assert [n for source, n in got if source == i] == list(range(500))
        assert {c.peer_id for c in consumer.producers} == {left.peer_id, right.peer_id}
        assert all(c.state == "connected" for c in consumer.producers)


async def test_streams_are_isolated_by_name() -> None:
    async with cluster("isolation", [()] * 2) as (source, reader):
        apples = source.streams.producer("apples", codec="str")
        pears = source.streams.producer("pears", codec="str")
        consumer = reader.streams.consumer("apples", codec="str")
        await asyncio.wait_for(consumer.when.subscribed(1), WAIT)
        assert not pears.is_online
        await apples.send("apple")
        assert await asyncio.wait_for(consumer.recv(), WAIT) == "apple"
        with pytest.raises(mosaik.Offline):
            pears.try_send("pear")
        with pytest.raises(mosaik.Empty):
            consumer.try_recv()


async def test_stats_count_encoded_bytes_as_mosaik_does() -> None:
    async with cluster("stats", [()] * 2) as (source, reader):
        producer = source.streams.producer("raw-stats")
        consumer = reader.streams.consumer("raw-stats")
        await asyncio.wait_for(producer.when.subscribed(1), WAIT)
        await producer.send(b"test")
        assert await asyncio.wait_for(consumer.recv(), WAIT) == b"test"
        # postcard Vec<u8>: one length byte and four payload bytes.
        assert producer.stats == mosaik.Stats(datums=1, bytes=5)
        assert consumer.stats == mosaik.Stats(datums=1, bytes=5)
        [subscription] = consumer.producers
        assert subscription.peer_id == source.peer_id
        assert subscription.stream_id == mosaik.id_of("raw-stats").hex()
        assert subscription.stats == mosaik.Stats(datums=1, bytes=5)
        await until(lambda: producer.consumers[0].stats.datums == 1, what="the sender's count")
        assert producer.consumers[0].stats == mosaik.Stats(datums=1, bytes=5)


async def test_max_consumers_turns_the_next_one_away_until_a_place_frees_up() -> None:
    async with cluster("capacity", [()] * 3) as (source, first_reader, second_reader):
        producer = source.streams.producer("scarce", max_consumers=1)
        first = first_reader.streams.consumer("scarce", backoff=FAST_RETRY)
        await asyncio.wait_for(first.when.subscribed(1), WAIT)
        second = second_reader.streams.consumer("scarce", backoff=FAST_RETRY)
        # Refused with 10509, it keeps retrying: listed, never connected.
        await until(lambda: len(second.producers) == 1, what="the second consumer to try")
        assert second.producers[0].state == "connecting"
        assert [c.peer_id for c in producer.consumers] == [first_reader.peer_id]
        await first.close()
        await asyncio.wait_for(second.when.subscribed(1), WAIT)
        assert [c.peer_id for c in producer.consumers] == [second_reader.peer_id]


async def test_a_producer_lets_in_only_the_consumers_it_requires() -> None:
    async with cluster("producer-require", [(), ("trusted",), ("guest",)]) as nodes:
        source, trusted, guest = nodes
        asked: list[mosaik.PeerInfo] = []

        def only_trusted(peer: mosaik.PeerInfo) -> bool:
            asked.append(peer)
            return peer.has_tag("trusted")

        producer = source.streams.producer("guarded", codec="str", require=only_trusted)
        welcome = trusted.streams.consumer("guarded", codec="str")
        refused = guest.streams.consumer("guarded", codec="str")
        await asyncio.wait_for(welcome.when.subscribed(1), WAIT)
        await until(lambda: guest.peer_id in {p.peer_id for p in asked}, what="the guest's turn")
        # 10403 is final: the guest stops following the producer.
        await until(lambda: refused.producers == [], what="the guest to give up")
        assert [c.peer_id for c in producer.consumers] == [trusted.peer_id]
        await producer.send("for trusted eyes")
        assert await asyncio.wait_for(welcome.recv(), WAIT) == "for trusted eyes"
        with pytest.raises(mosaik.Empty):
            refused.try_recv()


async def test_a_predicate_that_raises_says_no(caplog: pytest.LogCaptureFixture) -> None:
    async with cluster("require-raises", [()] * 2) as (source, reader):

        def broken(peer: mosaik.PeerInfo) -> bool:
            raise RuntimeError("boom")

        producer = source.streams.producer("fragile", require=broken)
        consumer = reader.streams.consumer("fragile")
        await until(lambda: "predicate raised" in caplog.text, timeout=WAIT, what="the log line")
        await until(lambda: consumer.producers == [], what="the consumer to give up")
        assert producer.consumers == []


async def test_a_consumer_follows_only_the_producers_it_requires() -> None:
    async with cluster("consumer-require", [("primary",), (), ()]) as nodes:
        primary, secondary, reader = nodes
        from_primary = primary.streams.producer("prices", codec="str")
        from_secondary = secondary.streams.producer("prices", codec="str")
        await wait_advertised(reader, "prices", 2)
        consumer = reader.streams.consumer(
            "prices", codec="str", require=lambda peer: peer.has_tag("primary")
        )
        await asyncio.wait_for(consumer.when.subscribed(1), WAIT)
        await from_primary.send("from primary")
        assert await asyncio.wait_for(consumer.recv(), WAIT) == "from primary"
        assert [c.peer_id for c in consumer.producers] == [primary.peer_id]
        assert not from_secondary.is_online


async def test_an_undecodable_datum_ends_only_its_producers_subscription(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with cluster("decode-error", [()] * 3) as (good_node, bad_node, reader):
        good = good_node.streams.producer("words", codec="str")
        bad = bad_node.streams.producer("words", codec="raw")
        consumer = reader.streams.consumer("words", codec="str")
        await asyncio.wait_for(consumer.when.subscribed(2), WAIT)
        await bad.send(b"\x05ab")  # claims 5 bytes, has 2
        with pytest.raises(mosaik.DecodeError):
            await asyncio.wait_for(consumer.recv(), WAIT)
        await until(lambda: bad.consumers == [], what="the bad producer to lose its consumer")
        assert [c.peer_id for c in consumer.producers] == [good_node.peer_id]
        await until(lambda: "could not be decoded" in caplog.text, what="the log line")
        await good.send("still here")
        assert await asyncio.wait_for(consumer.recv(), WAIT) == "still here"


async def test_a_datum_decoded_in_a_batch_still_arrives_before_the_bad_one() -> None:
    async with cluster("decode-batch", [()] * 2) as (source, reader):
        producer = source.streams.producer("mixed", codec="raw")
        consumer = reader.streams.consumer("mixed", codec="str")
        await asyncio.wait_for(consumer.when.subscribed(1), WAIT)
        await producer.send_many([b"\x02ok", b"\x04fine", b"\xff"])
        received: list[str] = []
        with pytest.raises(mosaik.DecodeError):
            while True:
                received.extend(await asyncio.wait_for(consumer.recv_batch(), WAIT))
        assert received == ["ok", "fine"]


async def test_a_custom_codec_failure_is_a_decode_error() -> None:
    class Strict:
        def encode(self, obj: object) -> bytes:
            assert isinstance(obj, bytes)
            return obj

        def decode(self, buf: bytes) -> bytes:
            if buf == b"bad":
                raise ValueError("not this one")
            return buf

    async with cluster("decode-custom", [()] * 2) as (source, reader):
        producer = source.streams.producer("custom", codec=Strict())
        consumer = reader.streams.consumer("custom", codec=Strict())
        await asyncio.wait_for(consumer.when.subscribed(1), WAIT)
        await producer.send_many([b"good", b"bad"])
        assert await asyncio.wait_for(consumer.recv(), WAIT) == b"good"
        with pytest.raises(mosaik.DecodeError, match="ValueError: not this one") as caught:
            await asyncio.wait_for(consumer.recv(), WAIT)
        assert isinstance(caught.value.__cause__, ValueError)


@pytest.mark.parametrize(
    ("overflow", "kept"),
    [("drop_oldest", list(range(92, 100))), ("drop_newest", list(range(8)))],
)
async def test_overflow_policies_keep_the_queue_bounded(overflow: str, kept: list[int]) -> None:
    async with cluster(f"overflow-{overflow}", [()] * 2) as (source, reader):
        producer = source.streams.producer("burst", codec="json", lagging="block")
        consumer = reader.streams.consumer("burst", codec="json", queue_size=8, overflow=overflow)
        await asyncio.wait_for(producer.when.subscribed(1), WAIT)
        await producer.send_many(range(100))
        await until(
            lambda: consumer.stats.datums == 100, timeout=WAIT, what="every datum to arrive"
        )
        assert consumer.dropped == 92
        assert await consumer.recv_batch(100) == kept


async def test_block_and_block_lose_nothing_and_hold_the_producer_back() -> None:
    count, size = 10_000, 16 * 1024
    async with cluster("lossless", [()] * 2) as (source, reader):
        producer = source.streams.producer("bulk", lagging="block")
        consumer = reader.streams.consumer("bulk", queue_size=256)
        await asyncio.wait_for(producer.when.subscribed(1), WAIT)

        async def send_numbered() -> None:
            for start in range(0, count, 500):
                batch = [n.to_bytes(4, "big") * (size // 4) for n in range(start, start + 500)]
                await producer.send_many(batch)

        sending = asyncio.create_task(send_numbered())
        await until(lambda: consumer.stats.datums >= 256, timeout=WAIT, what="the queue to fill")
        # Nobody reads: whatever the producer could still push is bounded by
        # its buffers and the link's flow control, far below the total.
        await asyncio.sleep(0.5)
        assert not sending.done()
        assert producer.stats.datums < count // 2
        expected = 0
        while expected < count:
            for datum in await asyncio.wait_for(consumer.recv_batch(256), WAIT):
                assert len(datum) == size
                assert int.from_bytes(datum[:4], "big") == expected
                expected += 1
        await asyncio.wait_for(sending, WAIT)
        assert consumer.dropped == 0


async def test_a_restarted_producer_node_is_picked_up() -> None:
    async with cluster("restart", [()] * 2) as (reader, source):
        consumer = reader.streams.consumer("heartbeat", codec="str", backoff=FAST_RETRY)
        producer = source.streams.producer("heartbeat", codec="str")
        await asyncio.wait_for(consumer.when.subscribed(1), WAIT)
        await source.close()
        await until(lambda: consumer.producers == [], timeout=WAIT, what="the old producer to go")
        async with mosaik.Network.create(
            "restart", local=True, bootstrap=[reader.address]
        ) as again:
            producer = again.streams.producer("heartbeat", codec="str")
            await asyncio.wait_for(consumer.when.subscribed(1), 5)
            await producer.send("back")
            assert await asyncio.wait_for(consumer.recv(), WAIT) == "back"


async def test_a_producer_closing_ends_the_receiver_and_iteration_ends_on_close() -> None:
    async with cluster("graceful", [()] * 2) as (source, reader):
        producer = source.streams.producer("last-words", codec="str")
        consumer = reader.streams.consumer("last-words", codec="str")
        await asyncio.wait_for(consumer.when.subscribed(1), WAIT)
        await producer.send_many(["one", "two", "three"])
        await producer.close()
        # 204: the subscription ends for good, after every accepted datum.
        await until(lambda: consumer.producers == [], timeout=WAIT, what="the receiver to end")
        got: list[str] = []

        async def iterate() -> None:
            async for word in consumer:
                got.append(word)

        reading = asyncio.create_task(iterate())
        await until(lambda: len(got) == 3, what="the accepted datums")
        await consumer.close()
        await asyncio.wait_for(reading, WAIT)
        assert got == ["one", "two", "three"]
        with pytest.raises(mosaik.Closed):
            await consumer.recv()


async def test_readers_sharing_a_consumer_split_its_datums_without_loss() -> None:
    async with cluster("shared-reader", [()] * 2) as (source, reader):
        producer = source.streams.producer("work", codec="json", lagging="block")
        consumer = reader.streams.consumer("work", codec="json", queue_size=64)
        await asyncio.wait_for(producer.when.subscribed(1), WAIT)
        taken: list[int] = []

        async def take(style: str) -> None:
            while True:
                if style == "recv":
                    taken.append(await consumer.recv())
                else:
                    taken.extend(await consumer.recv_batch(7))

        workers = [asyncio.create_task(take(style)) for style in ("recv", "batch", "recv")]
        await producer.send_many(range(3000))
        await until(lambda: len(taken) >= 3000, timeout=WAIT, what="every datum to be taken")
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        assert sorted(taken) == list(range(3000))


async def test_errors_hand_back_the_unsent_datum() -> None:
    async with mosaik.Network.create("unsent", local=True) as net:
        producer = net.streams.producer("nobody", codec="json")
        datum = {"keep": "me"}
        with pytest.raises(mosaik.Offline) as offline:
            producer.try_send(datum)
        assert offline.value.datum is datum  # type: ignore[attr-defined]
        await producer.close()
        with pytest.raises(mosaik.Closed) as closed:
            await producer.send_many([datum, 2, 3])
        assert closed.value.datum is datum  # type: ignore[attr-defined]
        assert closed.value.sent == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"overflow": "sometimes"}, ValueError, "overflow"),
        ({"overflow": 1}, TypeError, "overflow"),
        ({"backoff": 3}, TypeError, "backoff"),
        ({"require": "yes"}, TypeError, "require"),
    ],
)
async def test_bad_consumer_options_are_named(
    net: mosaik.Network, kwargs: dict[str, object], error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=rf"^{argument}\b"):
        net.streams.consumer("bad", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"initial": -1}, ValueError, "backoff.initial"),
        ({"initial": 0}, ValueError, "backoff.initial"),
        ({"factor": 0.5}, ValueError, "backoff.factor"),
        ({"max_delay": float("inf")}, ValueError, "backoff.max_delay"),
        ({"initial": 2.0, "max_delay": 1.0}, ValueError, "backoff.max_delay"),
        ({"max_elapsed": "long"}, TypeError, "backoff.max_elapsed"),
        ({"jitter": 1}, TypeError, "backoff.jitter"),
    ],
)
def test_bad_backoff_values_are_named(
    kwargs: dict[str, object], error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=rf"^{argument}\b"):
        mosaik.Backoff(**kwargs)  # type: ignore[arg-type]
