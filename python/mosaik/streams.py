"""Streams: producers publish datums, every consumer of the stream receives them.

A stream is named like a network (a name, or a 64-hex id); to meet a Rust
``produce::<String>()`` stream, name it by the Rust type name,
``"alloc::string::String"``, and use the ``"str"`` codec.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from . import _checks, _html, codecs
from ._handles import Closing, Live, Native
from ._mosaik import DEFAULTS, ChannelInfo, PeerInfo, Stats
from .errors import Closed, DecodeError, Empty, MosaikError

if TYPE_CHECKING:
    from ._mosaik import Batch, Jwt
    from ._mosaik import Consumer as NativeConsumer
    from ._mosaik import Producer as NativeProducer
    from ._mosaik import Streams as NativeStreams

__all__ = ["Backoff", "ChannelInfo", "Consumer", "Producer", "Stats", "Streams"]

#: How many datums a consumer moves from the native queue per crossing when
#: the caller takes them one at a time (``recv``, ``async for``).
_READ_AHEAD = 256

#: A sender whose datums all fit yields to the event loop this often.
_YIELD_EVERY = 256

Require = Callable[[PeerInfo], bool]
#: What a producer does with a consumer whose buffer is full.
Lagging = Literal["disconnect", "drop", "block"]
#: What a consumer's full queue does with a new datum.
Overflow = Literal["block", "drop_oldest", "drop_newest"]


@dataclass(frozen=True)
class Backoff:
    """How a consumer retries a producer whose link broke (mosaik's defaults).

    Delays start at ``initial`` seconds and grow by ``factor`` up to
    ``max_delay``; with ``jitter`` each is randomised so consumers do not
    retry in step. A consumer gives up on a producer after ``max_elapsed``
    seconds without a datum, and tries again when that producer's entry
    changes (a restart, a re-announce).
    """

    initial: float = DEFAULTS["backoff_initial"]
    factor: float = DEFAULTS["backoff_factor"]
    max_delay: float = DEFAULTS["backoff_max_delay"]
    max_elapsed: float = DEFAULTS["backoff_max_elapsed"]
    jitter: bool = DEFAULTS["backoff_jitter"]

    def __post_init__(self) -> None:
        # A zero first delay would re-dial in a busy loop: no delay ever grows from it.
        _checks.check_fields(self, ("initial", "max_delay"), _checks.check_seconds, "backoff.")
        _checks.check_fields(self, ("max_elapsed",), _checks.check_seconds_or_zero, "backoff.")
        factor = _checks.check_number("backoff.factor", self.factor)
        if not 1 <= factor < float("inf"):
            raise ValueError(f"backoff.factor: must be a finite number >= 1, got {self.factor!r}")
        if self.max_delay < self.initial:
            raise ValueError(
                f"backoff.max_delay: must be at least initial ({self.initial!r}), "
                f"got {self.max_delay!r}"
            )
        _checks.check_bool("backoff.jitter", self.jitter)


def _with_datum(error: MosaikError, datum: Any) -> MosaikError:
    """Hands the unsent datum back on the error, so nothing is lost."""
    error.datum = datum  # type: ignore[attr-defined]
    return error


class _When:
    """``producer.when`` and ``consumer.when``: waits on the subscriptions
    connected to the other side (a producer's consumers, a consumer's
    producers)."""

    def __init__(self, native: NativeProducer | NativeConsumer) -> None:
        self._native = native

    async def subscribed(self, minimum: int = 1) -> None:
        """Waits until at least ``minimum`` peers are connected."""
        await self._native.subscribed(_checks.check_int("minimum", minimum, minimum=1))

    async def online(self) -> None:
        """Waits until at least one peer is connected."""
        await self._native.subscribed(1)

    async def offline(self) -> None:
        """Waits until no peer is connected."""
        await self._native.unsubscribed(0)

    async def unsubscribed(self, maximum: int = 0) -> None:
        """Waits until at most ``maximum`` peers are connected."""
        await self._native.unsubscribed(_checks.check_int("maximum", maximum, minimum=0))

    def next_subscription(self) -> Awaitable[None]:
        """Resolves when a peer connects after this call (a new
        subscription or a reconnect), whoever was connected before."""
        return self._native.next_subscription()


class Producer(Closing):
    """Publishes datums to every consumer of one stream.

    ``send``, ``try_send`` and ``send_many`` raise :class:`Offline`,
    :class:`Full` or :class:`Closed` with the unsent datum as ``error.datum``
    (and, from ``send_many``, how many went out before it as ``error.sent``).
    """

    def __init__(self, native: NativeProducer, plan: codecs.Plan, name: str, codec: str) -> None:
        self._native = native
        self._encode = plan.encode
        self._name = name
        self._codec = codec
        self._queued_at_once = 0
        self.when = _When(native)

    stream_id = Native[str]("The stream's id, 64 hex.")
    is_online = Native[bool]("Whether at least one consumer is subscribed.")
    stats = Native[Stats]("Datums and bytes sent.")
    refusals = Native[dict[str, int]](
        "Subscriptions refused (``no_capacity``; ``peer_limit``: the peer already "
        "holds 8; ``require``; ``require_busy``: 16 predicates already running; "
        "``require_timeout``: no answer within 5 s; ``ticket``) or ended because a "
        "ticket expired or was removed (``ticket_revoked``), by reason."
    )
    consumers = Native[list[ChannelInfo]](
        "Live subscriptions, connecting or connected.", name="channels"
    )

    async def send(self, datum: Any) -> None:
        """Sends one datum, waiting while offline or full."""
        payload = datum if self._encode is None else self._encode(datum)
        try:
            # A datum that fits is queued at once, without a round trip
            # through the native runtime and back to this event loop.
            pending = self._native.send(payload)
            if pending is not None:
                await pending
                return
        except MosaikError as e:
            raise _with_datum(e, datum) from None
        self._queued_at_once += 1
        if self._queued_at_once % _YIELD_EVERY == 0:
            await asyncio.sleep(0)  # a sender that never waits must not starve the loop

    def try_send(self, datum: Any) -> None:
        """Sends without waiting; raises :class:`Offline`, :class:`Full` or :class:`Closed`."""
        payload = datum if self._encode is None else self._encode(datum)
        try:
            self._native.try_send(payload)
        except MosaikError as e:
            raise _with_datum(e, datum) from None

    async def send_many(self, datums: Iterable[Any]) -> int:
        """Sends datums in order with one crossing into the native core."""
        items = datums if isinstance(datums, list) else list(datums)
        encode = self._encode
        payloads = items if encode is None else [encode(d) for d in items]
        try:
            # What fits is queued at once; only the rest (the producer
            # offline, or a consumer's outbox full) is awaited.
            queued = self._native.send_many(payloads)
            if not isinstance(queued, int):
                return await queued
        except MosaikError as e:
            sent: int = getattr(e, "sent", 0)
            raise _with_datum(e, items[sent] if sent < len(items) else None) from None
        await asyncio.sleep(0)  # a sender that never waits must not starve the loop
        return queued

    async def close(self) -> None:
        """Ends every subscription (consumers see 204 GracefulShutdown). Idempotent."""
        self._native.close()

    def __repr__(self) -> str:
        if self._native.is_closed:
            state = "closed"
        else:
            online = "online" if self.is_online else "offline"
            state = f"{online}, {self._native.consumer_count} consumers"
        return f"<Producer {self._name!r} {state}, {self.stats.datums} datums>"

    def _repr_html_(self) -> str:
        return _html.producer(self)


class Consumer(Closing):
    """Receives the datums of every producer of one stream, each producer in order.

    A datum that fails to decode raises :class:`DecodeError` from the call
    that meets it, once, and ends the subscription to the producer that sent
    it; the datums around it are still delivered.
    """

    def __init__(self, native: NativeConsumer, plan: codecs.Plan, name: str, codec: str) -> None:
        self._native = native
        self._decode = plan.decode
        self._name = name
        self._codec = codec
        # The last batch taken from the native queue, read from `_pos` on;
        # `_runs` says which channel each datum came through, as
        # (end index, channel) in order; `_undecodable` maps the index of each
        # payload the native side could not decode to the reason.
        self._pending: list[Any] = []
        self._pos = 0
        self._runs: list[tuple[int, int]] = []
        self._undecodable: dict[int, str] = {}
        # Tasks waiting for the native queue, woken through its ready
        # descriptor (see `_wait_readable`); `_watching` is the loop that
        # polls it while anyone waits.
        self._waiters: list[asyncio.Future[None]] = []
        self._watching: asyncio.AbstractEventLoop | None = None
        self._ready_fd: int | None = None
        self.when = _When(native)

    stream_id = Native[str]("The stream's id, 64 hex.")
    stats = Native[Stats]("Datums and bytes received from producers.")
    is_online = Native[bool]("Whether at least one producer is connected.")
    producers = Native[list[ChannelInfo]](
        "Producers being followed, connecting or connected.", name="channels"
    )
    dropped = Native[int](
        'Datums the overflow policy dropped (always 0 with ``overflow="block"``).'
    )

    def _fill(self, batch: Batch) -> None:
        """Appends a native batch to the buffer (another task may have filled
        it while this one waited, so nothing is replaced before it is read)."""
        items, runs, undecodable = batch.items, batch.runs, batch.undecodable
        if self._pos >= len(self._pending):
            self._pending, self._pos, self._runs, self._undecodable = items, 0, [], {}
            base = 0
        else:
            base = len(self._pending)
            self._pending.extend(items)
        total = base
        for count, channel in runs:
            total += count
            self._runs.append((total, channel))
        for index, reason in undecodable:
            self._undecodable[base + index] = reason

    async def _ready(self, max_items: int) -> bool:
        """Until the buffer holds a datum; False once closed and drained."""
        woke = False
        while self._pos >= len(self._pending):
            # Fast path: take what is already queued without a round trip
            # through the native runtime, then let other tasks run once
            # (unless this task has just been waiting, so others have run).
            try:
                self._fill(self._native.try_recv_batch(max_items))
            except Empty:
                pass
            except Closed:
                return self._pos < len(self._pending)
            else:
                if not woke:
                    await asyncio.sleep(0)
                continue
            woke = True
            if not await self._wait_readable():
                batch = await self._native.recv_batch(max_items)
                if batch is None:
                    return self._pos < len(self._pending)
                self._fill(batch)
        return True

    async def _wait_readable(self) -> bool:
        """Until the native queue may hold a datum or has closed (wakes may
        be spurious). The event loop polls the queue's ready descriptor, so a
        wake is one write on the native side: no thread hand-off, no GIL.
        False if this loop cannot poll descriptors (then await natively)."""
        loop = asyncio.get_running_loop()
        if self._ready_fd is None:
            self._ready_fd = self._native.ready_fd()
        if self._native.arm_ready():
            return True
        waiter: asyncio.Future[None] = loop.create_future()
        if not self._waiters:
            try:
                loop.add_reader(self._ready_fd, self._wake_waiters)
            except NotImplementedError:
                return False
            self._watching = loop
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:  # cancelled: leave the others waiting
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._stop_watching()
        return True

    def _wake_waiters(self) -> None:
        self._native.clear_ready()
        waiters, self._waiters = self._waiters, []
        self._stop_watching()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _stop_watching(self) -> None:
        loop, self._watching = self._watching, None
        if loop is not None and self._ready_fd is not None and not loop.is_closed():
            loop.remove_reader(self._ready_fd)

    def _leave_sender_of(self, index: int, reason: str) -> None:
        """Ends the subscription to the producer that sent the datum at ``index``."""
        channel = next((c for end, c in self._runs if index < end), None)
        if channel is not None:
            self._native.reject(channel, reason)

    def _take_one(self) -> Any:
        pos = self._pos
        item = self._pending[pos]
        self._pending[pos] = None  # release big payloads as soon as they are read
        self._pos = pos + 1
        if self._undecodable and pos in self._undecodable:
            reason = self._undecodable.pop(pos)
            self._leave_sender_of(pos, reason)
            raise DecodeError(reason)
        if self._decode is None:
            return item
        try:
            return self._decode(item)
        except DecodeError as e:
            self._leave_sender_of(pos, str(e))
            raise
        except Exception as e:
            reason = f"{type(e).__name__}: {e}"
            self._leave_sender_of(pos, reason)
            raise DecodeError(f"datum failed to decode: {reason}") from e

    def _take(self, max_items: int) -> list[Any]:
        start = self._pos
        end = min(start + max_items, len(self._pending))
        if self._undecodable:
            end = min([end, *(i for i in self._undecodable if i >= start)])
            if end == start:
                return [self._take_one()]
        pending = self._pending
        # The whole buffer goes as it is (it is replaced below), not copied.
        chunk = pending if start == 0 and end == len(pending) else pending[start:end]
        if self._decode is not None:
            try:
                chunk = list(map(self._decode, chunk))
            except Exception:
                # Deliver what decodes before the bad datum; it raises on its own.
                decoded = []
                for item in chunk:
                    try:
                        decoded.append(self._decode(item))
                    except Exception:
                        break
                if not decoded:
                    return [self._take_one()]
                chunk = decoded
        self._pos = start + len(chunk)
        if self._pos >= len(self._pending):
            self._pending, self._pos, self._runs, self._undecodable = [], 0, [], {}
        return chunk

    async def recv(self) -> Any:
        """The next datum; raises :class:`Closed` once closed and drained."""
        if not await self._ready(_READ_AHEAD):
            raise Closed("the consumer is closed")
        return self._take_one()

    def try_recv(self) -> Any:
        """A datum if one is ready; raises :class:`Empty` otherwise."""
        if self._pos >= len(self._pending):
            self._fill(self._native.try_recv_batch(_READ_AHEAD))
        return self._take_one()

    async def recv_batch(self, max_items: int = 1024) -> list[Any]:
        """At least one and at most ``max_items`` datums."""
        max_items = _checks.check_int("max_items", max_items, minimum=1)
        if not await self._ready(max_items):
            raise Closed("the consumer is closed")
        return self._take(max_items)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        if not await self._ready(_READ_AHEAD):
            raise StopAsyncIteration
        return self._take_one()

    async def close(self) -> None:
        """Leaves every producer (102 Cancelled); queued datums stay readable. Idempotent."""
        self._native.close()

    def __repr__(self) -> str:
        state = "closed" if self._native.is_closed else f"{self._native.producer_count} producers"
        return f"<Consumer {self._name!r} {state}, {self.stats.datums} datums>"

    def _repr_html_(self) -> str:
        return _html.consumer(self)


class Streams:
    """``net.streams``: producers and consumers on this node."""

    def __init__(self, native: NativeStreams, peer_id: str, names: dict[str, str]) -> None:
        self._native = native
        self._peer_id = peer_id
        self._names = names
        self._producers = Live[Producer]()
        self._consumers = Live[Consumer]()

    def _open_producers(self) -> list[Producer]:
        """The producers made here that are still open, oldest first."""
        return [p for p in self._producers.items() if not p._native.is_closed]

    def _open_consumers(self) -> list[Consumer]:
        """The consumers made here that are still open, oldest first."""
        return [c for c in self._consumers.items() if not c._native.is_closed]

    def producer(
        self,
        stream: str,
        *,
        codec: object = "bytes",
        buffer_size: int = DEFAULTS["buffer_size"],
        max_consumers: int | None = None,
        max_subscriptions_per_peer: int = DEFAULTS["max_subscriptions_per_peer"],
        lagging: Lagging = "disconnect",
        require: Require | None = None,
        require_ticket: Jwt | Iterable[Jwt] | None = None,
    ) -> Producer:
        """Publishes ``stream``. ``require`` decides which consumers may subscribe
        (asked once per subscription, with the consumer's :class:`PeerInfo`).

        ``require_ticket`` (a :class:`mosaik.Jwt` or several, all of which must
        pass) admits only consumers holding a valid ticket, refusing the rest
        with 10403; a subscription ends when its ticket expires or is removed,
        and a renewed ticket (``discovery.replace_ticket``) keeps it.

        ``max_subscriptions_per_peer`` bounds what one peer may hold at once
        (further ones are refused with 10509, counted as ``peer_limit``)."""
        name = _checks.check_str("stream", stream)
        resolved = codecs.resolve(codec)
        plan = codecs.plan(resolved)
        native = self._native.producer(
            name,
            {
                "layout": plan.layout,
                "buffer_size": _checks.check_int("buffer_size", buffer_size, minimum=1),
                "lagging": _checks.check_choice("lagging", lagging),
                "max_consumers": _checks.check_optional_int(
                    "max_consumers", max_consumers, minimum=1
                ),
                "max_subscriptions_per_peer": _checks.check_int(
                    "max_subscriptions_per_peer", max_subscriptions_per_peer, minimum=1
                ),
                "require": _checks.check_callable("require", require, "a PeerInfo"),
                "require_ticket": require_ticket,
            },
        )
        _html.remember(self._names, name)
        return self._producers.add(Producer(native, plan, name, codecs.name_of(resolved)))

    def consumer(
        self,
        stream: str,
        *,
        codec: object = "bytes",
        queue_size: int = DEFAULTS["queue_size"],
        queue_bytes: int = DEFAULTS["queue_bytes"],
        overflow: Overflow = "block",
        backoff: Backoff | None = None,
        require: Require | None = None,
        require_ticket: Jwt | Iterable[Jwt] | None = None,
    ) -> Consumer:
        """Subscribes to every producer of ``stream``. ``require`` decides which
        producers to follow (asked again whenever a producer's entry changes).

        ``require_ticket`` follows only producers holding a valid ticket,
        checked again whenever a producer's entry changes and when its ticket
        expires.

        ``queue_size`` datums and ``queue_bytes`` payload bytes bound what waits
        unread (one datum larger than ``queue_bytes`` still gets through on
        its own); when either is reached, ``overflow`` decides."""
        name = _checks.check_str("stream", stream)
        resolved = codecs.resolve(codec)
        plan = codecs.plan(resolved)
        native = self._native.consumer(
            name,
            {
                "layout": plan.layout,
                "queue_size": _checks.check_int("queue_size", queue_size, minimum=1),
                "queue_bytes": _checks.check_int("queue_bytes", queue_bytes, minimum=1),
                "overflow": _checks.check_choice("overflow", overflow),
                "backoff": _checks.check_instance("backoff", backoff, Backoff, "mosaik.Backoff"),
                "require": _checks.check_callable("require", require, "a PeerInfo"),
                "require_ticket": require_ticket,
            },
        )
        _html.remember(self._names, name)
        return self._consumers.add(Consumer(native, plan, name, codecs.name_of(resolved)))

    def __repr__(self) -> str:
        return f"<Streams of {self._peer_id[:10]}>"
