"""``bench``: throughput and latency between two local nodes, on loopback.

Two phases of ``--seconds`` each, over one stream between two nodes of this
process (so one clock stamps both ends):

- *throughput*: the producer sends batches as fast as the consumer takes
  them (``lagging="block"``, nothing lost); the latency of this phase is
  send-to-receive at full load, so it is mostly queueing;
- *latency*: one datum in flight at a time, the unloaded one-way latency.

A figure for the record belongs in ``benches/`` with its command line; this
is the quick look a user takes on their own machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import time
from types import ModuleType
from typing import Any

from ..network import Network
from ..streams import Consumer, Producer
from ._common import EXIT_OK, CliError, Parser, command, within
from ._latency import summary_ms
from ._output import print_json, table

NETWORK = "mosaik-bench"
STREAM = "mosaik-bench/datums"
#: Datums per ``send_many`` in the throughput phase.
SEND_BATCH = 256
#: Latency samples kept per phase (memory stays bounded on long runs).
MAX_SAMPLES = 200_000
#: Bytes a datum needs for its send time.
STAMP = 8
MAX_SIZE = 1 << 20
SETUP_TIMEOUT = 30.0


def register(commands: argparse._SubParsersAction[Parser]) -> None:
    parser = command(
        commands,
        "bench",
        bench,
        "a local two-node throughput and latency run with a summary table",
    )
    parser.add_argument(
        "--seconds",
        metavar="S",
        type=float,
        default=3.0,
        help="length of each phase, throughput then latency (default 3)",
    )
    parser.add_argument(
        "--size",
        metavar="BYTES",
        type=int,
        default=64,
        help=f"bytes per datum, {STAMP} to {MAX_SIZE} (default 64)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--plot",
        metavar="FILE",
        help="write a latency histogram image to FILE (needs matplotlib: "
        "pip install 'mosaik-net[plot]')",
    )


class _Phase:
    """What one phase measured."""

    def __init__(self) -> None:
        self.datums = 0
        self.seconds = 0.0
        self.samples: list[int] = []  # latencies in ns

    def record(self, stamped: bytes, now: int) -> None:
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(now - int.from_bytes(stamped[:STAMP], "little"))

    def json(self, size: int) -> dict[str, Any]:
        rate = self.datums / self.seconds if self.seconds else 0.0
        return {
            "datums": self.datums,
            "seconds": round(self.seconds, 3),
            "datums_per_second": round(rate, 1),
            "mib_per_second": round(rate * size / 2**20, 3),
            "latency_ms": summary_ms(self.samples),
        }


async def bench(args: argparse.Namespace) -> int:
    if not 0 < args.seconds <= 3600:
        raise CliError("--seconds: must be more than 0 and at most 3600")
    if not STAMP <= args.size <= MAX_SIZE:
        raise CliError(f"--size: must be between {STAMP} and {MAX_SIZE} bytes")
    pyplot = _pyplot() if args.plot else None  # before the run: fail fast
    async with contextlib.AsyncExitStack() as stack:
        sender = await stack.enter_async_context(Network.create(NETWORK, local=True))
        receiver = await stack.enter_async_context(
            Network.create(NETWORK, local=True, bootstrap=[sender.address])
        )
        producer = sender.streams.producer(STREAM, codec="bytes", lagging="block")
        consumer = receiver.streams.consumer(STREAM, codec="bytes")
        await within(
            SETUP_TIMEOUT,
            asyncio.gather(producer.when.subscribed(1), consumer.when.subscribed(1)),
            "the two local nodes did not connect",
        )
        loaded = await _throughput(producer, consumer, args.size, args.seconds)
        unloaded = await _latency(producer, consumer, args.size, args.seconds)
    results = {
        "nodes": 2,
        "size": args.size,
        "throughput": loaded.json(args.size),
        "latency": unloaded.json(args.size),
    }
    if args.json:
        print_json(results)
    else:
        _print_summary(results, args.seconds)
    if pyplot is not None:
        _plot(pyplot, args.plot, loaded, unloaded, args.size)
        if not args.json:
            print(f"\nlatency histogram written to {args.plot}")
    return EXIT_OK


async def _throughput(producer: Producer, consumer: Consumer, size: int, seconds: float) -> _Phase:
    phase = _Phase()
    stop = asyncio.Event()
    padding = bytes(size - STAMP)
    sent = 0

    async def produce() -> None:
        nonlocal sent
        while not stop.is_set():
            stamp = time.monotonic_ns().to_bytes(STAMP, "little")
            sent += await producer.send_many([stamp + padding] * SEND_BATCH)

    async def consume() -> None:
        while True:
            batch = await consumer.recv_batch(4096)
            now = time.monotonic_ns()
            phase.datums += len(batch)
            # The first and last datum of a batch: its age range.
            phase.record(batch[0], now)
            phase.record(batch[-1], now)

    consuming = asyncio.ensure_future(consume())
    producing = asyncio.ensure_future(produce())
    started = time.monotonic()
    try:
        await asyncio.sleep(seconds)
        counted = phase.datums
        phase.seconds = time.monotonic() - started
        stop.set()
        await producing

        async def drained() -> None:
            while phase.datums < sent:  # noqa: ASYNC110 -- consume() advances it
                await asyncio.sleep(0.01)

        # The latency phase starts on an empty pipe.
        await within(SETUP_TIMEOUT, drained(), "the consumer did not catch up")
        phase.datums = counted
    finally:
        for task in (consuming, producing):
            task.cancel()
        await asyncio.gather(consuming, producing, return_exceptions=True)
    return phase


async def _latency(producer: Producer, consumer: Consumer, size: int, seconds: float) -> _Phase:
    phase = _Phase()
    padding = bytes(size - STAMP)
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline and phase.datums < MAX_SAMPLES:
        await producer.send(time.monotonic_ns().to_bytes(STAMP, "little") + padding)
        datum = await consumer.recv()
        phase.record(datum, time.monotonic_ns())
        phase.datums += 1
    phase.seconds = time.monotonic() - started
    return phase


def _print_summary(results: dict[str, Any], seconds: float) -> None:
    print(
        f"bench: {results['nodes']} local nodes on loopback, {results['size']}-byte datums, "
        f"{seconds:g} s per phase\n"
    )
    rows = []
    for name in ("throughput", "latency"):
        phase = results[name]
        latency = phase["latency_ms"]
        rows.append(
            (
                name,
                f"{phase['datums']:,d}",
                f"{phase['datums_per_second']:,.0f}",
                f"{phase['mib_per_second']:.2f}",
                *(_ms(latency[key]) for key in ("p50", "p90", "p99", "max")),
            )
        )
    headers = ("phase", "datums", "datums/s", "MiB/s", "p50 ms", "p90 ms", "p99 ms", "max ms")
    print(table(headers, rows, right=range(1, 8)))
    print(
        "\nthroughput: batches as fast as the consumer takes them (its latency is mostly "
        "queueing);\nlatency: one datum in flight at a time (one-way, one clock)."
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pyplot() -> ModuleType:
    """matplotlib's pyplot on a file-only backend, or a one-line error saying what to install."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        raise CliError(
            "--plot needs matplotlib: pip install matplotlib (or 'mosaik-net[plot]')"
        ) from None
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def _plot(pyplot: ModuleType, path: str, loaded: _Phase, unloaded: _Phase, size: int) -> None:
    figure, axes = pyplot.subplots(1, 2, figsize=(11, 4))
    for ax, phase, title in (
        (axes[0], unloaded, "one datum in flight"),
        (axes[1], loaded, "at full throughput (queueing)"),
    ):
        ax.hist([s / 1e6 for s in phase.samples], bins=60, color="#3b6ea8")
        ax.set_title(f"{title}: {len(phase.samples):,d} samples")
        ax.set_xlabel("send to receive, ms")
        ax.set_ylabel("samples")
        ax.set_yscale("log")
    figure.suptitle(f"mosaik bench: two local nodes, {size}-byte datums")
    figure.tight_layout()
    try:
        figure.savefig(path)
    except (OSError, ValueError) as e:
        raise CliError(f"--plot: cannot write {path}: {e}") from None
    finally:
        pyplot.close(figure)
