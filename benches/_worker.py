"""Our side of every benchmark row: a process driven by JSON lines.

``benches/run.py`` starts this script (``python benches/_worker.py``) as a
subprocess and sends one command object per line on stdin; each gets
exactly one answer line on stdout, ``{"ok": true, ...}`` or ``{"ok": false,
"error": ...}``. The commands and answers are those of the native reference
peer's ``bench_*`` commands (``tests/interop/src/bench.rs`` documents them),
so both sides of a row are driven by the same code. Our extras:

- ``start {"network", "relay"?}`` → ``{"address", "peer_id"}``: the node
  that ``bench_produce`` and ``bench_hold_producers`` use.
- ``mode``: ``"batch"`` (``send_many`` / ``recv_batch``, the default) or
  ``"plain"`` (``send`` per datum / ``async for``); paced producers always
  ``send`` one datum at a time.
- ``flow: "lossless"`` is ``lagging="block"`` with ``buffer_size=inflight``;
  ``flow: "default"`` keeps the producer's defaults.

All nodes are ``local=True``; with ``relay`` they also use that (loopback)
relay, as the native nodes do.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import traceback
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Callable

import mosaik

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _payloads import (  # noqa: E402 - the benches folder is not a package
    HEADER,
    pool_of,
    rss_kib,
    sent_at,
    sleep_until,
    stamped,
)

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_INFLIGHT = 1024
CHECKPOINT_EVERY_NS = 10_000_000
#: Datums ``async for`` takes between two looks at the clock.
PLAIN_CHUNK = 256

Json = dict[str, Any]


class Tally:
    """Datums a reader has taken so far; the clock task reads it."""

    __slots__ = ("datums",)

    def __init__(self) -> None:
        self.datums = 0


class Worker:
    def __init__(self) -> None:
        self.node: mosaik.Network | None = None
        self.commands: dict[str, Callable[[Json], Awaitable[Json]]] = {
            "start": self.start,
            "bench_produce": self.produce,
            "bench_consume": self.consume,
            "bench_converge": self.converge,
            "bench_idle_nodes": self.idle_nodes,
            "bench_hold_producers": self.hold_producers,
            "bench_subscribe": self.subscribe,
        }

    async def handle(self, cmd: Json) -> Json:
        name = cmd.get("cmd", "")
        handler = self.commands.get(name)
        if handler is None:
            return {"ok": False, "error": f"unknown command {name!r}"}
        try:
            return {"ok": True, **await handler(cmd)}
        except Exception as error:  # every failure becomes an answer
            trace = traceback.format_exc(limit=4)
            return {"ok": False, "error": f"{type(error).__name__}: {error}\n{trace}"}

    def started(self) -> mosaik.Network:
        if self.node is None:
            raise RuntimeError("no node running; send `start` first")
        return self.node

    async def start(self, cmd: Json) -> Json:
        self.node = await create_node(cmd, bootstrap=())
        return {"address": self.node.address, "peer_id": self.node.peer_id}

    async def produce(self, cmd: Json) -> Json:
        node = self.started()
        size = int(cmd["size"])
        seconds = float(cmd["seconds"])
        rate = cmd.get("rate")
        mode = cmd.get("mode", "batch")
        wait = timeout_of(cmd)
        if cmd.get("flow", "lossless") == "lossless":
            inflight = int(cmd.get("inflight", DEFAULT_INFLIGHT))
            producer = node.streams.producer(
                cmd["stream"], codec="bytes", buffer_size=inflight, lagging="block"
            )
        else:
            producer = node.streams.producer(cmd["stream"], codec="bytes")
        await asyncio.wait_for(producer.when.subscribed(int(cmd.get("consumers", 1))), wait)

        sent = 0
        started = time.monotonic_ns()
        checkpoints = [[started, 0]]
        pool = pool_of(size, started)
        deadline = started + int(seconds * 1e9)

        async def sending() -> None:
            nonlocal sent
            last_checkpoint = started
            while (now := time.monotonic_ns()) < deadline:
                if now - last_checkpoint >= CHECKPOINT_EVERY_NS:
                    checkpoints.append([now, sent])
                    last_checkpoint = now
                if rate is not None:
                    due = started + int(sent * 1e9 / float(rate))
                    if due > now:
                        await asyncio.sleep((due - now) / 1e9)
                    await producer.send(stamped(sent, size))
                    sent += 1
                elif mode == "plain":
                    for datum in pool[:PLAIN_CHUNK]:
                        await producer.send(datum)
                        sent += 1
                else:
                    sent += await producer.send_many(pool)

        # `send` waits while no consumer is connected; the deadline bounds it.
        remaining = (deadline - time.monotonic_ns()) / 1e9
        try:
            await asyncio.wait_for(sending(), max(remaining, 0.0))
        except asyncio.TimeoutError:
            pass
        checkpoints.append([time.monotonic_ns(), sent])
        return {
            "sent": sent,
            "elapsed_ms": (time.monotonic_ns() - started) // 1_000_000,
            "checkpoints": checkpoints,
        }

    async def consume(self, cmd: Json) -> Json:
        wait = timeout_of(cmd)
        nodes = await create_nodes(cmd, int(cmd.get("nodes", 1)))
        try:
            started = time.monotonic()
            consumers = [n.streams.consumer(cmd["stream"], codec="bytes") for n in nodes]
            await asyncio.wait_for(asyncio.gather(*(c.when.subscribed(1) for c in consumers)), wait)
            subscribed_ms = int((time.monotonic() - started) * 1000)
            reports = await asyncio.gather(*(measure(c, cmd) for c in consumers))
            return {"consumers": list(reports), "subscribed_ms": subscribed_ms}
        finally:
            await retire(nodes)

    async def converge(self, cmd: Json) -> Json:
        import convergence  # benches/convergence.py, our side of this row

        seconds = await convergence.one_run(
            int(cmd["nodes"]), 0, relay=cmd.get("relay", "default"), timeout=timeout_of(cmd)
        )
        return {"elapsed_ms": int(seconds * 1000)}

    async def idle_nodes(self, cmd: Json) -> Json:
        count = int(cmd.get("nodes", 16))
        settle = int(cmd.get("settle_ms", 1000)) / 1000
        wait = timeout_of(cmd)
        seed = await create_node(cmd, bootstrap=())
        rest: list[mosaik.Network] = []
        try:
            await asyncio.sleep(settle)
            rss_before = rss_kib()
            rest = await asyncio.gather(
                *(create_node(cmd, bootstrap=[seed.address]) for _ in range(count))
            )
            everyone = [seed, *rest]
            # Joined means knowing someone, as on the native side.
            await asyncio.wait_for(
                asyncio.gather(*(n.discovery.wait_for_peers(1) for n in everyone)), wait
            )
            await asyncio.sleep(settle)
            return {"rss_before_kib": rss_before, "rss_after_kib": rss_kib()}
        finally:
            await retire([seed, *rest])

    async def hold_producers(self, cmd: Json) -> Json:
        node = self.started()
        settle = int(cmd.get("settle_ms", 1000)) / 1000
        count = int(cmd.get("count", 32))
        producers = [node.streams.producer(f"{cmd['prefix']}-{i}") for i in range(count)]
        await asyncio.sleep(settle)
        rss_open = rss_kib()
        await asyncio.wait_for(
            asyncio.gather(*(p.when.subscribed(1) for p in producers)), timeout_of(cmd)
        )
        await asyncio.sleep(settle)
        return {"rss_open_kib": rss_open, "rss_subscribed_kib": rss_kib()}

    async def subscribe(self, cmd: Json) -> Json:
        settle = int(cmd.get("settle_ms", 1000)) / 1000
        count = int(cmd.get("count", 32))
        nodes = await create_nodes(cmd, 1)
        try:
            await asyncio.sleep(settle)
            rss_before = rss_kib()
            consumers = [nodes[0].streams.consumer(f"{cmd['prefix']}-{i}") for i in range(count)]
            await asyncio.wait_for(
                asyncio.gather(*(c.when.subscribed(1) for c in consumers)), timeout_of(cmd)
            )
            await asyncio.sleep(settle)
            return {"rss_before_kib": rss_before, "rss_subscribed_kib": rss_kib()}
        finally:
            await retire(nodes)


async def measure(consumer: mosaik.streams.Consumer, cmd: Json) -> Json:
    """One consumer's figures: first datum, warm-up, optional pause, window.

    The window is placed on the producer's clock: it starts ``warmup_s``
    (plus ``pause_s``) after the time stamped into the first datum, so all
    consumers of a fan-out count over the same interval. A reader task only
    counts; this task watches the clock and snapshots the count, so the hot
    loop carries no timing code.
    """
    mode = cmd.get("mode", "batch")
    latencies: list[int] | None = [] if cmd.get("latency") else None
    first = await asyncio.wait_for(consumer.recv(), timeout_of(cmd))
    warmup_end = sent_at(first) + int(float(cmd["warmup_s"]) * 1e9)
    pause = int(float(cmd.get("pause_s") or 0) * 1e9)
    window_end = warmup_end + pause + int(float(cmd["seconds"]) * 1e9)
    tally = Tally()
    recording = [False]
    reader = asyncio.ensure_future(read(consumer, mode, tally, latencies, recording))
    report: Json = {}
    try:
        await sleep_until(warmup_end)
        if pause:
            reader.cancel()
            report["pause_start_ns"] = time.monotonic_ns()
            await sleep_until(warmup_end + pause)
            report["pause_end_ns"] = time.monotonic_ns()
            reader = asyncio.ensure_future(read(consumer, mode, tally, latencies, recording))
        start_ns, counted = time.monotonic_ns(), tally.datums
        if start_ns >= window_end:
            raise RuntimeError("the first datum came after the measuring window")
        recording[0] = True
        await sleep_until(window_end)
        end_ns, last = time.monotonic_ns(), tally.datums
        recording[0] = False
    finally:
        await consumer.close()
        reader.cancel()
    report.update(
        datums=last - counted,
        window_ns=end_ns - start_ns,
        window_start_ns=start_ns,
        window_end_ns=end_ns,
    )
    if latencies is not None:
        report["latencies_ns"] = latencies
    return report


async def read(
    consumer: mosaik.streams.Consumer,
    mode: str,
    tally: Tally,
    latencies: list[int] | None,
    recording: list[bool],
) -> None:
    """Takes datums until the consumer closes: the loop a user would write."""
    try:
        if latencies is not None:
            async for datum in consumer:
                tally.datums += 1
                if recording[0]:
                    latencies.append(time.monotonic_ns() - sent_at(datum))
        elif mode == "plain":
            async for _datum in consumer:
                tally.datums += 1
        else:
            while True:
                tally.datums += len(await consumer.recv_batch(1024))
    except mosaik.Closed:
        pass


async def create_node(cmd: Json, bootstrap: Any) -> mosaik.Network:
    relay = cmd.get("relay") or "default"  # "default" is no relay under local=True
    return await mosaik.Network.create(
        cmd["network"], local=True, relay=relay, bootstrap=list(bootstrap)
    )


async def create_nodes(cmd: Json, count: int) -> list[mosaik.Network]:
    made = asyncio.gather(
        *(create_node(cmd, bootstrap=cmd.get("bootstrap", ())) for _ in range(count))
    )
    return list(await asyncio.wait_for(made, timeout_of(cmd)))


async def retire(nodes: list[mosaik.Network]) -> None:
    """Closes nodes, bounded: the driver ends this process right after anyway."""
    try:
        await asyncio.wait_for(asyncio.gather(*(n.close() for n in nodes)), 5)
    except asyncio.TimeoutError:
        pass


def timeout_of(cmd: Json) -> float:
    return float(cmd.get("timeout_ms", DEFAULT_TIMEOUT_S * 1000)) / 1000


async def serve() -> None:
    worker = Worker()
    print(json.dumps({"event": "ready", "header": HEADER}), flush=True)
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            break
        if not line.strip():
            continue
        try:
            cmd = json.loads(line)
        except json.JSONDecodeError as error:
            answer: Json = {"ok": False, "error": f"invalid JSON: {error}"}
        else:
            if cmd.get("cmd") == "shutdown":
                break
            answer = await worker.handle(cmd)
        print(json.dumps(answer), flush=True)
    if worker.node is not None:
        await retire([worker.node])


if __name__ == "__main__":
    asyncio.run(serve())
