"""The child side of test_shutdown.py: one shutdown scenario in a fresh interpreter.

Usage: ``python shutdown_child.py SCENARIO NETWORK SEED``. ``NETWORK`` is a
name no other run uses, so concurrent runs never see each other; ``SEED``
varies the timing of the races from run to run. Lines on stdout tell the
parent where the child is: ``ready`` (datums flowing), ``waiting`` (about to
await the call the parent interrupts), ``interrupted`` (KeyboardInterrupt
reached the top level), ``ended ...`` (the close race's tally).

Every wait here has a timeout, so a child never outlives its parent's
budget by itself; the parent kills it in any case.
"""

from __future__ import annotations

import asyncio
import faulthandler
import random
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from contextvars import Context
from typing import TYPE_CHECKING

import mosaik

if TYPE_CHECKING:
    from typing_extensions import TypeVarTuple, Unpack

    Ts = TypeVarTuple("Ts")

#: Bound on every wait for something the scenario needs before its real test
#: starts (discovery, subscriptions): far above what loopback takes.
SETUP_TIMEOUT = 10.0
STREAM = "shutdown-test"
#: Handles kept alive until the interpreter exits, as a program's globals
#: would be: nodes left here are closed by mosaik's exit hook, not by being
#: dropped when a function returns.
LIVE: list[object] = []


def say(line: str) -> None:
    print(line, flush=True)


async def pair(network: str) -> tuple[mosaik.Network, mosaik.Network]:
    """Two nodes that know each other. Never closed here: each scenario decides."""
    a = await mosaik.Network.create(network, local=True)
    b = await mosaik.Network.create(network, local=True, bootstrap=[a.address])
    return a, b


async def pump(producer: mosaik.Producer, payload: bytes) -> None:
    """Sends batches until cancelled or the producer is gone."""
    try:
        while True:
            await producer.send_many([payload] * 64)
    except mosaik.MosaikError:
        return  # closed by shutdown: what a user's loop would do too


async def drain(consumer: mosaik.Consumer, counter: list[int]) -> None:
    """Reads until cancelled or the consumer is gone, counting datums."""
    try:
        while True:
            counter[0] += len(await consumer.recv_batch())
    except mosaik.MosaikError:
        return


async def flowing(network: str, rng: random.Random) -> None:
    """Two nodes, each producing a stream the other consumes, datums moving
    both ways, every handle kept in ``LIVE``. Returns once datums arrive."""
    a, b = await pair(network)
    ab = a.streams.producer("a-to-b", lagging="block", buffer_size=rng.choice([4, 64, 1024]))
    ba = b.streams.producer("b-to-a", lagging="drop")
    from_a = b.streams.consumer("a-to-b", queue_size=rng.choice([1, 16, 1024]))
    from_b = a.streams.consumer("b-to-a")
    await asyncio.wait_for(
        asyncio.gather(from_a.when.subscribed(), from_b.when.subscribed()), SETUP_TIMEOUT
    )
    received = [0]
    LIVE.extend((a, b, ab, ba, from_a, from_b))
    LIVE.extend(
        (
            asyncio.ensure_future(pump(ab, rng.randbytes(rng.choice([16, 4096, 65536])))),
            asyncio.ensure_future(pump(ba, rng.randbytes(256))),
            asyncio.ensure_future(drain(from_a, received)),
            asyncio.ensure_future(drain(from_b, received)),
        )
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETUP_TIMEOUT
    while received[0] < 500:  # noqa: ASYNC110 -- a plain counter has no event
        if loop.time() > deadline:
            raise AssertionError(f"only {received[0]} datums arrived in {SETUP_TIMEOUT}s")
        await asyncio.sleep(0.01)


def exit_live(network: str, rng: random.Random) -> None:
    """asyncio.run returns (cancelling the pumps) with every node, producer and
    consumer still open: the interpreter exits with datums in flight."""

    async def main() -> None:
        await flowing(network, rng)
        say("ready")
        # No close: the nodes are left to the interpreter's exit.

    asyncio.run(main())


def exit_live_loop_thread(network: str, rng: random.Random) -> None:
    """The event loop runs in a daemon thread (as under Jupyter or a GUI) and
    keeps sending and receiving while the main thread exits the interpreter."""
    started = threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        try:
            await flowing(network, rng)
        except BaseException as e:
            failure.append(e)
            raise
        finally:
            started.set()
        await asyncio.Event().wait()  # forever: the process exits under it

    threading.Thread(target=asyncio.run, args=(main(),), daemon=True).start()
    if not started.wait(SETUP_TIMEOUT * 2) or failure:
        raise AssertionError(f"the loop thread did not start flowing: {failure!r}")
    say("ready")


def sigint_recv(network: str, rng: random.Random) -> None:
    """Ctrl-C while ``await consumer.recv()`` waits for a datum that never comes."""

    async def main() -> None:
        a = await mosaik.Network.create(network, local=True)  # left to exit
        quiet = a.streams.producer(STREAM)  # online, never sends
        LIVE.extend((a, quiet))
        async with mosaik.Network.create(network, local=True, bootstrap=[a.address]) as b:
            consumer = b.streams.consumer(STREAM)
            await asyncio.wait_for(consumer.when.subscribed(), SETUP_TIMEOUT)
            say("waiting")
            await consumer.recv()
        say(f"recv returned while {quiet!r} never sent")

    interruptible(main)


def sigint_send(network: str, rng: random.Random) -> None:
    """Ctrl-C while ``await producer.send()`` waits for a consumer that never reads."""

    async def main() -> None:
        # Not kept: `a` is dropped when main ends (the other way a node goes).
        a = await mosaik.Network.create(network, local=True)
        async with mosaik.Network.create(network, local=True, bootstrap=[a.address]) as b:
            producer = b.streams.producer(STREAM, lagging="block", buffer_size=1)
            stuck = a.streams.consumer(STREAM, queue_size=1)  # never read
            await asyncio.wait_for(producer.when.subscribed(), SETUP_TIMEOUT)
            payload = bytes(64 * 1024)
            await fill(producer, payload)
            say("waiting")
            await producer.send(payload)
        say(f"send returned although {stuck!r} never read")

    interruptible(main)


async def fill(producer: mosaik.Producer, payload: bytes) -> None:
    """Sends until the producer stays full: its buffer, the QUIC windows and
    the consumer's queue hold all they can, so the next ``send`` must wait."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETUP_TIMEOUT
    full_since: float | None = None
    while loop.time() < deadline:
        try:
            producer.try_send(payload)
            full_since = None
        except mosaik.Full:
            now = loop.time()
            if full_since is None:
                full_since = now
            elif now - full_since > 0.3:  # nothing drained for 300 ms: stuck for good
                return
            await asyncio.sleep(0.02)
    raise AssertionError(f"the producer never stayed full within {SETUP_TIMEOUT}s")


def interruptible(main: Callable[[], Awaitable[None]]) -> None:
    """What a program that handles Ctrl-C does: catch it at the top level."""

    async def run() -> None:
        await main()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        say("interrupted")


def close_race(network: str, rng: random.Random) -> None:
    """``await net.close()`` while many ``send`` and ``send_many`` calls are in
    flight: each must return or raise mosaik.Closed, none may hang."""

    async def main() -> None:
        a, b = await pair(network)
        producer = a.streams.producer(STREAM, lagging="block", buffer_size=rng.choice([1, 8, 64]))
        consumer = b.streams.consumer(STREAM, queue_size=rng.choice([1, 8, 64]))
        await asyncio.wait_for(consumer.when.subscribed(), SETUP_TIMEOUT)

        async def slow_reader() -> None:
            try:
                while True:
                    await consumer.recv()
                    await asyncio.sleep(0.001)
            except mosaik.Closed:
                return

        reader = asyncio.ensure_future(slow_reader())
        payload = rng.randbytes(rng.choice([8, 1024, 32 * 1024]))
        singles = [asyncio.ensure_future(producer.send(payload)) for _ in range(200)]
        batches = [asyncio.ensure_future(producer.send_many([payload] * 50)) for _ in range(10)]
        await asyncio.sleep(rng.uniform(0, 0.05))  # close at a different point each run
        await asyncio.wait_for(a.close(), 5)

        outcomes = await asyncio.wait_for(
            asyncio.gather(*singles, *batches, return_exceptions=True), 5
        )
        completed = closed = 0
        for outcome in outcomes:
            if isinstance(outcome, mosaik.Closed):
                closed += 1
                if getattr(outcome, "datum", None) != payload:
                    raise AssertionError(f"Closed without the unsent datum: {outcome!r}")
            elif isinstance(outcome, BaseException):
                raise AssertionError(f"a send ended with {outcome!r}, not Closed") from outcome
            else:
                completed += 1
        try:
            await asyncio.wait_for(producer.send(payload), 5)
            raise AssertionError("send after close() did not raise Closed")
        except mosaik.Closed:
            pass
        reader.cancel()
        await b.close()
        say(f"ended completed={completed} closed={closed}")

    asyncio.run(main())


def aexit_exception(network: str, rng: random.Random) -> None:
    """An exception leaves ``async with Network.create(...)`` mid-stream: it
    propagates unchanged and is the only traceback the user sees."""

    async def main() -> None:
        async with mosaik.Network.create(network, local=True) as a:
            producer = a.streams.producer(STREAM, lagging="block")
            async with mosaik.Network.create(network, local=True, bootstrap=[a.address]) as b:
                consumer = b.streams.consumer(STREAM)
                await asyncio.wait_for(consumer.when.subscribed(), SETUP_TIMEOUT)
                sending = asyncio.ensure_future(pump(producer, b"x" * 1024))
                await asyncio.wait_for(consumer.recv(), SETUP_TIMEOUT)
                say("ready")
                del sending  # still sending when the body fails
                raise RuntimeError("boom from the async with body")

    asyncio.run(main())


class WideWindowLoop(asyncio.SelectorEventLoop):
    """Sleeps (GIL released) at the entry of ``call_soon_threadsafe`` when a
    worker thread delivers a result: it widens, to 50 ms, the window in which
    the GIL can change hands there and asyncio.run can close the loop. Without
    it, a result landing on a closed loop happens a few times per thousand
    runs under load; with it, on every run unless the binding guards it."""

    def call_soon_threadsafe(
        self,
        callback: Callable[[Unpack[Ts]], object],
        *args: Unpack[Ts],
        context: Context | None = None,
    ) -> asyncio.Handle:
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.05)
        return super().call_soon_threadsafe(callback, *args, context=context)


def result_after_loop_closed(network: str, rng: random.Random) -> None:
    """Native calls that finish while the loop closes under them (what
    asyncio.run does after Ctrl-C or an exception) drop their result quietly."""

    async def main() -> None:
        a, b = await pair(network)
        producer = a.streams.producer(STREAM, lagging="block", buffer_size=1)
        stuck = b.streams.consumer(STREAM, queue_size=1)  # never read: sends block
        await asyncio.wait_for(producer.when.subscribed(), SETUP_TIMEOUT)
        payload = bytes(64 * 1024)
        await fill(producer, payload)
        sends = [asyncio.ensure_future(producer.send(payload)) for _ in range(50)]
        await asyncio.sleep(0.1)  # they all wait
        await producer.close()  # each send now ends with Closed, from a worker thread
        # Blocking (GIL released) lets those threads find their futures not
        # cancelled yet; they then meet the loop closing.
        time.sleep(0.02)  # noqa: ASYNC251 -- blocking the loop is the point
        say(f"closing the loop under {len(sends)} sends and {stuck!r}")

    # asyncio.run's teardown, spelled out to choose the loop on Python 3.9+.
    loop = WideWindowLoop()
    try:
        loop.run_until_complete(main())
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    finally:
        loop.close()
    time.sleep(0.2)  # the late results arrive now, on the closed loop
    say("exited")


SCENARIOS: dict[str, Callable[[str, random.Random], None]] = {
    f.__name__: f
    for f in (
        exit_live,
        exit_live_loop_thread,
        sigint_recv,
        sigint_send,
        close_race,
        aexit_exception,
        result_after_loop_closed,
    )
}


if __name__ == "__main__":
    scenario, network, seed = sys.argv[1:]
    # The parent sends SIGUSR1 to a child that overran its budget: every
    # thread's Python stack then lands in the failure message.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    SCENARIOS[scenario](network, random.Random(int(seed)))
