"""Streams: producers publish datums, every consumer of the stream receives them.

A stream is named like a network (a name, or a 64-hex id); to meet a Rust
``produce::<String>()`` stream, name it by the Rust type name,
``"alloc::string::String"``, and use the ``"str"`` codec.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _checks, codecs
from .errors import Closed

if TYPE_CHECKING:
    from ._mosaik import Consumer as NativeConsumer
    from ._mosaik import Node
    from ._mosaik import Producer as NativeProducer


@dataclass(frozen=True)
class Stats:
    """Datums and encoded payload bytes, counted as mosaik counts them."""

    datums: int
    bytes: int


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name}: must be at least 1, got {value}")
    return value


class _ProducerWhen:
    def __init__(self, native: NativeProducer) -> None:
        self._native = native

    async def subscribed(self, minimum: int = 1) -> None:
        """Waits until at least ``minimum`` consumers are connected."""
        await self._native.subscribed(_positive_int("minimum", minimum))

    async def online(self) -> None:
        """Waits until the producer is online (at least one subscriber)."""
        await self._native.subscribed(1)


class Producer:
    """Publishes datums to every consumer of one stream."""

    def __init__(self, native: NativeProducer, codec: codecs.Codec, name: str) -> None:
        self._native = native
        self._codec = codec
        self._name = name
        self.when = _ProducerWhen(native)

    @property
    def stream_id(self) -> str:
        return self._native.stream_id

    @property
    def is_online(self) -> bool:
        return self._native.is_online

    @property
    def stats(self) -> Stats:
        return Stats(*self._native.stats)

    async def send(self, datum: Any) -> None:
        """Sends one datum, waiting while offline or full."""
        await self._native.send(self._codec.encode(datum))

    def try_send(self, datum: Any) -> None:
        """Sends without waiting; raises :class:`Offline`, :class:`Full` or :class:`Closed`."""
        self._native.try_send(self._codec.encode(datum))

    async def send_many(self, datums: Iterable[Any]) -> int:
        """Sends datums in order with one crossing into the native core."""
        encoded = [self._codec.encode(d) for d in datums]
        return await self._native.send_many(encoded)

    async def close(self) -> None:
        """Ends every subscription (consumers see 204 GracefulShutdown). Idempotent."""
        self._native.close()

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._native.is_closed else f"{self._native.consumer_count} consumers"
        return f"<Producer {self._name!r} {state}, {self.stats.datums} datums>"


class _ConsumerWhen:
    def __init__(self, native: NativeConsumer) -> None:
        self._native = native

    async def subscribed(self, minimum: int = 1) -> None:
        """Waits until at least ``minimum`` producers are connected."""
        await self._native.subscribed(_positive_int("minimum", minimum))


class Consumer:
    """Receives the datums of every producer of one stream, each producer in order."""

    def __init__(self, native: NativeConsumer, codec: codecs.Codec, name: str) -> None:
        self._native = native
        self._codec = codec
        self._name = name
        # Payloads moved from the native queue in one batch, decoded on the way out.
        self._buffer: deque[bytes] = deque()
        self.when = _ConsumerWhen(native)

    @property
    def stream_id(self) -> str:
        return self._native.stream_id

    @property
    def stats(self) -> Stats:
        return Stats(*self._native.stats)

    async def recv(self) -> Any:
        """The next datum; raises :class:`Closed` once closed and drained."""
        if self._buffer:
            return self._codec.decode(self._buffer.popleft())
        payload = await self._native.recv()
        if payload is None:
            raise Closed("the consumer is closed")
        return self._codec.decode(payload)

    def try_recv(self) -> Any:
        """A datum if one is ready; raises :class:`Empty` otherwise."""
        if self._buffer:
            return self._codec.decode(self._buffer.popleft())
        return self._codec.decode(self._native.try_recv())

    async def recv_batch(self, max_items: int = 1024) -> list[Any]:
        """At least one and at most ``max_items`` datums."""
        max_items = _positive_int("max_items", max_items)
        if not self._buffer:
            self._buffer.extend(await self._native.recv_batch(max_items))
            if not self._buffer:
                raise Closed("the consumer is closed")
        count = min(max_items, len(self._buffer))
        return [self._codec.decode(self._buffer.popleft()) for _ in range(count)]

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if not self._buffer:
            self._buffer.extend(await self._native.recv_batch(1024))
            if not self._buffer:
                raise StopAsyncIteration
        return self._codec.decode(self._buffer.popleft())

    async def close(self) -> None:
        """Leaves every producer (102 Cancelled); queued datums stay readable. Idempotent."""
        self._native.close()

    async def __aenter__(self) -> Consumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._native.is_closed else f"{self._native.producer_count} producers"
        return f"<Consumer {self._name!r} {state}, {self.stats.datums} datums>"


class Streams:
    """``net.streams``: producers and consumers on this node."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def producer(
        self,
        stream: str,
        *,
        codec: object = "bytes",
        buffer_size: int = 1024,
        max_consumers: int | None = None,
        lagging: str = "disconnect",
        require: object = None,
    ) -> Producer:
        name = _checks.check_str("stream", stream)
        resolved = codecs.resolve(codec)
        if require is not None:
            raise NotImplementedError("require: producer predicates are not supported yet")
        native = self._node.producer(
            name,
            _positive_int("buffer_size", buffer_size),
            _checks.check_str("lagging", lagging),
            None if max_consumers is None else _positive_int("max_consumers", max_consumers),
        )
        return Producer(native, resolved, name)

    def consumer(
        self,
        stream: str,
        *,
        codec: object = "bytes",
        queue_size: int = 1024,
        require: object = None,
    ) -> Consumer:
        name = _checks.check_str("stream", stream)
        resolved = codecs.resolve(codec)
        if require is not None:
            raise NotImplementedError("require: consumer predicates are not supported yet")
        native = self._node.consumer(name, _positive_int("queue_size", queue_size))
        return Consumer(native, resolved, name)

    def __repr__(self) -> str:
        return f"<Streams of {self._node.peer_id[:10]}>"
