"""The benchmark suite of issue 5: our streams and discovery against native
Rust mosaik 0.3.13, pyzmq and eclipse-zenoh, all measured in the same run.

    pip install .                  # the mosaik package measured: a RELEASE wheel
    pip install '.[bench]'         # pyzmq and eclipse-zenoh (their rows are skipped without)
    python benches/run.py          # full: 5 runs per figure, about 10 minutes
    python benches/run.py --quick  # 3 runs, 0.3 s windows, 16-node convergence, a
                                   # 2 s pause, no PUSH/PULL row, no retries, 4 s
                                   # setup bound: under 2 minutes
    python benches/run.py --groups [--quick]  # the consensus group suite instead
                                   # (benches/groups.py; other options go to it)

It measures the installed ``mosaik`` package, so install a release build
(``pip install .`` builds one); a development wheel is much slower. To build
a release wheel by hand: ``export CARGO_TARGET_DIR=$HOME/.cache/mosaik-target;
maturin build --release -o /tmp/relwheels && pip install --force-reinstall
--no-deps /tmp/relwheels/*.whl``. The native side, the reference peer of
``tests/interop`` (the real ``mosaik = "=0.3.13"`` crate), is built here with
``cargo build --release -p mosaik-interop-peer`` (``CARGO_TARGET_DIR``,
default ``~/.cache/mosaik-target``).

Prints a markdown report: a header (date, machine, command), one row per
measure with our figure and the anchor's as median (min-max) over the runs,
the ratio ours/anchor, the issue's target, and notes. ``--output FILE``
also writes it to a file (``benches/RESULTS.md``).

How it measures:

- Every producer and consumer is its own process on loopback: our side is
  ``benches/_worker.py`` (``local=True``), the native side the reference
  peer's ``bench_*`` commands (``tests/interop/src/bench.rs``), the
  alternatives ``benches/_alternatives.py``. Both mosaik sides use one
  loopback relay (the reference peer's ``relay`` command; native nodes
  cannot come online without one) and meet through the producer's address:
  ours as ``bootstrap``, native nodes by ``dial`` plus a catalog sync. The
  producer opens its stream before the consumers start.
- Throughput counts the datums that reach each consumer within a window:
  it starts a warm-up after the producer's start time (stamped into every
  datum, so all consumers of a fan-out share it) and the producer keeps
  sending a little past its end. Unpaced producers cycle pre-built datums.
  Both mosaik sides are lossless: ours with ``lagging="block"``, native
  mosaik (which has no blocking policy) by never letting more than its
  buffer of datums wait for the slowest consumer's link. pyzmq PUB/SUB, the
  one lossy transport here, also reports the share of the window's datums
  that arrived.
- Latency: 64 B datums paced at 1000/s carry ``CLOCK_MONOTONIC`` send
  times (shared by all local processes); the consumer subtracts them from
  its own clock at receipt. p50 and p99 are taken per run.
- Fan-out: 16 consumer nodes in 2 processes of 8 nodes, one consumer each
  (16 processes would measure process overhead on 2 cores, not fan-out).
- Convergence: N nodes in one process; the first, then N-1 at once with
  only the first's address (``convergence.one_run`` for us, the reference
  peer's node settings for native mosaik).
- Memory: RSS from ``/proc``. The stop-reading row samples both processes
  every 100 ms while the consumer does not read, with each side's defaults
  (ours: ``lagging="disconnect"``; native: its defaults, full-rate sends);
  one run. Idle nodes: RSS growth of one process per node that joined;
  subscriptions: producer plus consumer RSS growth per subscribed stream.
- A failed run is retried once in the full suite (convergence: not; quick:
  not) and counted in the table.

Hermetic: everything binds 127.0.0.1, no public relay, no mDNS, DHT or
DNS. After building, the suite re-executes itself inside a fresh network
namespace holding only loopback (``unshare --net``), and refuses to run
without one unless given ``--no-unshare``: the native peer's iroh endpoints
also try iroh's default DNS and pkarr address lookups, which the namespace
stops. Install the bench extra before running: the namespace has no
network.
"""

from __future__ import annotations

import argparse
import bisect
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _payloads import rss_kib  # noqa: E402 - the benches folder is not a package
from _process import BenchError, Json, Process  # noqa: E402

BENCHES = Path(__file__).resolve().parent
REPO = BENCHES.parent
WORKER = BENCHES / "_worker.py"
ALTERNATIVES = BENCHES / "_alternatives.py"

#: Datums that may wait for the slowest consumer: mosaik's default buffer,
#: fewer for big datums so that a run holds at most 64 MiB in flight.
INFLIGHT_BYTES = 64 << 20
LATENCY_RATE = 1000.0
HWM_NOTE = "SNDHWM = RCVHWM = 100000, see _alternatives.py"
RSS_SAMPLE_S = 0.1
MIB = 1 << 20


@dataclass(frozen=True)
class Settings:
    runs: int
    warmup_s: float
    window_s: float
    latency_window_s: float
    pause_s: float
    idle_nodes: int
    subscriptions: int
    memory_runs: int
    converge_nodes: int
    converge_timeout_s: float
    push_pull: bool  # also pyzmq PUSH/PULL, beside the PUB/SUB the issue asks for
    # Times a failed run is repeated. Native mosaik 0.3.13 (iroh 0.97) on the
    # local relay now and then leaves one of many concurrent subscriptions
    # connecting forever; failures are counted in the table either way.
    retries: int
    # Bound for starting nodes, subscribing and meeting, per step. Setup takes
    # under a second; a run that needs longer has hit a stalled connection
    # and is better repeated (or counted as failed) than waited for.
    setup_timeout_s: float
    # Warm-up of fan-out runs at least: 16 fresh subscriptions take a moment
    # to all carry data.
    fanout_warmup_s: float
    # Idle time before memory is read, for the RSS of fresh nodes and
    # subscriptions to settle.
    settle_s: float
    # Producers keep sending this long after the consumers' windows end.
    tail_s: float
    fanout_consumers: int = 16
    fanout_processes: int = 2


FULL = Settings(
    runs=5,
    warmup_s=1.0,
    window_s=3.0,
    latency_window_s=5.0,
    pause_s=60.0,
    idle_nodes=16,
    subscriptions=32,
    memory_runs=3,
    converge_nodes=32,
    converge_timeout_s=20.0,
    push_pull=True,
    retries=1,
    setup_timeout_s=8.0,
    fanout_warmup_s=1.0,
    settle_s=1.0,
    tail_s=0.3,
)
QUICK = Settings(
    runs=3,
    warmup_s=0.2,
    window_s=0.3,
    latency_window_s=0.5,
    pause_s=2.0,
    idle_nodes=8,
    subscriptions=16,
    memory_runs=1,
    converge_nodes=16,
    converge_timeout_s=8.0,
    push_pull=False,
    retries=0,
    setup_timeout_s=4.0,
    # 16 fresh subscriptions need about a second to all carry data at full
    # speed (measured: 0.5 s gave 0.1-0.9M datums/s, 1 s 1.8-3.9M).
    fanout_warmup_s=1.0,
    settle_s=0.5,
    tail_s=0.1,
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Building and the network namespace


def build_peer(release: bool = True) -> Path:
    """Builds the native reference peer; answers the binary's path."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "mosaik-target"))
    profile = "release" if release else "debug"
    log(f"building the native peer (cargo build --{profile}, target {target}) ...")
    command = ["cargo", "build", "-p", "mosaik-interop-peer"] + (["--release"] if release else [])
    built = subprocess.run(
        command,
        cwd=REPO,
        env={**os.environ, "CARGO_TARGET_DIR": str(target)},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if built.returncode != 0:
        sys.exit(f"cargo build failed:\n{built.stderr[-4000:]}")
    return target / profile / "mosaik-interop-peer"


def can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


def reexec_in_namespace(argv: list[str]) -> int:
    """Runs this script again in a network namespace with only loopback up."""
    script = 'ip link set lo up && exec "$@"'
    command = ["unshare", "--net", "--", "sh", "-c", script, "sh", sys.executable, *argv]
    return subprocess.call(command)


# --------------------------------------------------------------------------
# Measuring


@dataclass
class StreamRun:
    """One producer → consumers run."""

    rate: float  # datums/s, summed over consumers
    delivery: float  # lowest share of the window's sent datums a consumer got
    latencies_ns: list[int] = field(default_factory=list)
    rss_growth_kib: tuple[int, int] | None = None  # (producer, consumer)
    produced: Json = field(default_factory=dict)


class RssSampler:
    """Samples the resident memory of some processes every 100 ms."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.samples: dict[int, list[tuple[int, int]]] = {pid: [] for pid in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid, samples in self.samples.items():
                try:
                    samples.append((time.monotonic_ns(), rss_kib(pid)))
                except (OSError, RuntimeError):
                    pass  # the process has gone
            self._stop.wait(RSS_SAMPLE_S)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def growth_kib(self, pid: int, start_ns: int, end_ns: int) -> int:
        """Peak RSS within [start, end] minus the last sample before start."""
        samples = self.samples[pid]
        before = [kib for t, kib in samples if t <= start_ns]
        during = [kib for t, kib in samples if start_ns <= t <= end_ns]
        if not before or not during:
            raise BenchError("no memory samples around the pause")
        return max(during) - before[-1]


def sent_by(checkpoints: list[list[int]], t_ns: int) -> float:
    """The producer's sent count at ``t_ns``, interpolated between checkpoints."""
    times = [t for t, _ in checkpoints]
    i = bisect.bisect_left(times, t_ns)
    if i == 0:
        return float(checkpoints[0][1])
    if i == len(times):
        return float(checkpoints[-1][1])
    (t0, n0), (t1, n1) = checkpoints[i - 1], checkpoints[i]
    return n0 + (n1 - n0) * (t_ns - t0) / max(t1 - t0, 1)


def answers(processes: Sequence[Process], limit: float) -> list[Json]:
    """Every process's answer to its pending command, in order. The first
    refusal raises at once: the others' processes are then killed rather
    than waited for."""
    collected: list[Json | None] = [None] * len(processes)
    deadline = time.monotonic() + limit
    while any(answer is None for answer in collected):
        for i, process in enumerate(processes):
            if collected[i] is None:
                collected[i] = process.ready_answer()
        if time.monotonic() > deadline:
            raise BenchError(f"no answer within {limit:.0f} s")
        time.sleep(0.02)
    return [answer for answer in collected if answer is not None]


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


class Suite:
    def __init__(self, settings: Settings, peer: Path) -> None:
        self.settings = settings
        self.peer = peer
        self.notes: list[str] = []
        self._stack = ExitStack()
        relay_process = self._stack.enter_context(Process("relay", [str(peer)]))
        self.relay: str = relay_process.ask({"cmd": "relay"}, settings.setup_timeout_s)["url"]

    def close(self) -> None:
        self._stack.close()

    # sides -----------------------------------------------------------------

    def native(self) -> list[str]:
        return [str(self.peer)]

    @staticmethod
    def ours() -> list[str]:
        return [sys.executable, str(WORKER)]

    @staticmethod
    def alternative(kind: str) -> list[str]:
        return [sys.executable, str(ALTERNATIVES), kind]

    # runs ------------------------------------------------------------------

    def stream_run(
        self,
        argv: list[str],
        *,
        size: int,
        mode: str = "batch",
        consumers: int = 1,
        processes: int = 1,
        rate: float | None = None,
        window_s: float | None = None,
        warmup_s: float | None = None,
        flow: str = "lossless",
        pause_s: float | None = None,
    ) -> StreamRun:
        s = self.settings
        window = window_s if window_s is not None else s.window_s
        warmup = warmup_s if warmup_s is not None else s.warmup_s
        network = f"bench-{uuid.uuid4().hex[:12]}"
        stream = "bench-stream"
        produce_s = warmup + (pause_s or 0.0) + window + s.tail_s
        setup = s.setup_timeout_s
        limit = 2 * setup + produce_s + 10
        with ExitStack() as stack:
            producer = stack.enter_context(Process("producer", argv))
            address = producer.ask(
                {"cmd": "start", "network": network, "relay": self.relay}, setup
            )["address"]
            # The producer opens its stream first, so every consumer node finds it
            # in the catalog it syncs on joining rather than waiting for gossip.
            producer.send(
                {
                    "cmd": "bench_produce",
                    "stream": stream,
                    "size": size,
                    "seconds": produce_s,
                    "rate": rate,
                    "consumers": consumers,
                    "flow": flow,
                    "inflight": max(16, min(1024, INFLIGHT_BYTES // size)),
                    "mode": mode,
                    # It waits from before the consumers' processes start.
                    "timeout_ms": int(2 * setup * 1000),
                }
            )
            readers = [
                stack.enter_context(Process(f"consumer {i}", argv)) for i in range(processes)
            ]
            for reader, nodes in zip(readers, split(consumers, processes)):
                reader.send(
                    {
                        "cmd": "bench_consume",
                        "network": network,
                        "relay": self.relay,
                        "bootstrap": [address],
                        "stream": stream,
                        "size": size,
                        "nodes": nodes,
                        "warmup_s": warmup,
                        "seconds": window,
                        "latency": rate is not None,
                        "pause_s": pause_s,
                        "mode": mode,
                        "timeout_ms": int(setup * 1000),
                    }
                )
            sampler = RssSampler([producer.pid, readers[0].pid]) if pause_s else None
            try:
                *consumed, produced = answers([*readers, producer], limit)
            finally:
                if sampler is not None:
                    sampler.stop()
        reports = [report for answer in consumed for report in answer["consumers"]]
        checkpoints = produced["checkpoints"]
        rate_sum = sum(r["datums"] / (r["window_ns"] / 1e9) for r in reports)
        deliveries = []
        for r in reports:
            sent = sent_by(checkpoints, r["window_end_ns"]) - sent_by(
                checkpoints, r["window_start_ns"]
            )
            deliveries.append(r["datums"] / sent if sent > 0 else 0.0)
        run = StreamRun(rate=rate_sum, delivery=min(deliveries), produced=produced)
        for r in reports:
            run.latencies_ns.extend(r.get("latencies_ns", []))
        if sampler is not None:
            first = reports[0]
            start, end = first["pause_start_ns"], first["pause_end_ns"]
            run.rss_growth_kib = (
                sampler.growth_kib(producer.pid, start, end),
                sampler.growth_kib(readers[0].pid, start, end),
            )
        return run

    def converge_run(self, argv: list[str]) -> float:
        with Process("converge", argv) as process:
            answer = process.ask(
                {
                    "cmd": "bench_converge",
                    "network": f"bench-{uuid.uuid4().hex[:12]}",
                    "relay": self.relay,
                    "nodes": self.settings.converge_nodes,
                    "timeout_ms": int(self.settings.converge_timeout_s * 1000),
                },
                self.settings.converge_timeout_s + 2 * self.settings.setup_timeout_s,
            )
        return float(answer["elapsed_ms"]) / 1000

    def idle_node_run(self, argv: list[str]) -> float:
        """KiB of resident memory per idle node that joined a network."""
        nodes = self.settings.idle_nodes
        with Process("idle nodes", argv) as process:
            answer = process.ask(
                {
                    "cmd": "bench_idle_nodes",
                    "network": f"bench-{uuid.uuid4().hex[:12]}",
                    "relay": self.relay,
                    "nodes": nodes,
                    "settle_ms": int(self.settings.settle_s * 1000),
                    "timeout_ms": int(self.settings.setup_timeout_s * 1000),
                },
                2 * self.settings.setup_timeout_s + 10,
            )
        return float(answer["rss_after_kib"] - answer["rss_before_kib"]) / nodes

    def subscription_run(self, argv: list[str]) -> float:
        """KiB of resident memory per subscription, producer and consumer together."""
        count = self.settings.subscriptions
        network = f"bench-{uuid.uuid4().hex[:12]}"
        setup = self.settings.setup_timeout_s
        limit = 2 * setup + 10
        with Process("producers", argv) as producer, Process("consumers", argv) as consumer:
            address = producer.ask(
                {"cmd": "start", "network": network, "relay": self.relay}, setup
            )["address"]
            settle_ms = int(self.settings.settle_s * 1000)
            common = {"prefix": "bench-sub", "count": count, "settle_ms": settle_ms}
            timeout_ms = int(setup * 1000)
            producer.send({"cmd": "bench_hold_producers", **common, "timeout_ms": timeout_ms})
            consumer.send(
                {
                    "cmd": "bench_subscribe",
                    **common,
                    "network": network,
                    "relay": self.relay,
                    "bootstrap": [address],
                    "timeout_ms": timeout_ms,
                }
            )
            held, subscribed = answers([producer, consumer], limit)
        grown = (held["rss_subscribed_kib"] - held["rss_open_kib"]) + (
            subscribed["rss_subscribed_kib"] - subscribed["rss_before_kib"]
        )
        return float(grown) / count


# --------------------------------------------------------------------------
# Figures and the table


@dataclass
class Figure:
    """The per-run values of one side of a row."""

    values: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def cell(self, fmt: Callable[[float], str]) -> str:
        if self.skipped:
            return f"skipped: {self.skipped}"
        if not self.values:
            return f"failed ({len(self.failures)} runs)"
        text = fmt(self.median)
        if len(self.values) > 1:
            text += f" ({fmt(min(self.values))}–{fmt(max(self.values))})"
        if self.failures:
            text += f", {len(self.failures)} of {len(self.values) + len(self.failures)} runs failed"
        return text


@dataclass
class Row:
    measure: str
    ours: Figure
    anchor_name: str
    anchor: Figure
    fmt: Callable[[float], str]
    target: str
    met: Callable[[float, float], bool] | None = None  # (ours, anchor) medians
    ours_cell: str | None = None  # overrides the figure's own cell
    anchor_cell: str | None = None

    def markdown(self) -> str:
        ours = self.ours_cell or self.ours.cell(self.fmt)
        anchor = self.anchor_cell or self.anchor.cell(self.fmt)
        ratio = met = "–"
        if self.ours.values and self.anchor.values and self.anchor.median:
            ratio = f"{self.ours.median / self.anchor.median:.2f}×"
            if self.met is not None:
                met = "yes" if self.met(self.ours.median, self.anchor.median) else "**no**"
        anchor = f"{self.anchor_name}: {anchor}"
        return f"| {self.measure} | {ours} | {anchor} | {ratio} | {self.target} | {met} |"


def per_second(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.0f}k"
    return f"{value:.0f}"


def mib_per_s(value: float) -> str:
    return f"{value:.0f} MiB/s" if value >= 10 else f"{value:.1f} MiB/s"


def micros(value: float) -> str:
    return f"{value:.0f} µs"


def seconds(value: float) -> str:
    return f"{value:.2f} s"


def kib(value: float) -> str:
    return f"{value / 1024:.1f} MiB" if value >= 1024 else f"{value:.0f} KiB"


def percentile(values: list[int], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(q / 100 * len(ordered) + 0.999999)))
    return float(ordered[rank - 1])


def at_least(factor: float) -> Callable[[float, float], bool]:
    return lambda ours, anchor: ours >= factor * anchor


def at_most(factor: float) -> Callable[[float, float], bool]:
    return lambda ours, anchor: ours <= factor * anchor


class Runner:
    """Runs the rows, interleaving the sides run by run so that drifting
    machine load hits both alike."""

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self.rows: list[Row] = []
        self.deliveries: dict[str, list[float]] = {}

    def sample(
        self, label: str, figure: Figure, measure: Callable[[], float], retries: int
    ) -> None:
        """One run; a failed run is recorded and tried again up to ``retries`` times."""
        for _attempt in range(1 + retries):
            started = time.monotonic()
            try:
                value = measure()
            except (BenchError, OSError, KeyError, ValueError, TypeError) as error:
                figure.failures.append(str(error))
                log(f"  {label}: FAILED {str(error).splitlines()[0][:300]}")
                continue
            figure.values.append(value)
            log(f"  {label}: {value:.6g} ({time.monotonic() - started:.1f} s)")
            return

    def interleaved(
        self, sides: dict[str, Callable[[], float]], runs: int, retries: int | None = None
    ) -> dict[str, Figure]:
        if retries is None:
            retries = self.suite.settings.retries
        figures = {name: Figure() for name in sides}
        for run in range(runs):
            for name, measure in sides.items():
                self.sample(f"{name} #{run + 1}", figures[name], measure, retries)
        return figures

    def stream(
        self, name: str, argv: list[str], lossy: bool = False, **kwargs: Any
    ) -> Callable[[], float]:
        """A throughput run; for a ``lossy`` transport it also keeps the
        share of the window's sent datums that arrived."""

        def measure() -> float:
            run = self.suite.stream_run(argv, **kwargs)
            if lossy:
                self.deliveries.setdefault(name, []).append(run.delivery)
            return run.rate

        return measure


def missing_module(name: str) -> str:
    try:
        __import__(name)
    except ImportError:
        return f"`{name}` not installed (pip install '.[bench]')"
    return ""


def run_rows(suite: Suite, only: set[str] | None) -> Runner:
    s = suite.settings
    runner = Runner(suite)
    native, ours = suite.native(), suite.ours()

    def wanted(group: str) -> bool:
        return only is None or group in only

    if wanted("64b") or wanted("zmq") or wanted("zenoh"):
        log("64 B throughput")
        figures = runner.interleaved(
            {
                "native": runner.stream("native 64 B", native, size=64),
                "ours batch": runner.stream("ours 64 B batch", ours, size=64, mode="batch"),
                "ours plain": runner.stream("ours 64 B plain", ours, size=64, mode="plain"),
            },
            s.runs,
        )
        ours_batch = figures["ours batch"]
        if wanted("64b"):
            runner.rows.append(
                Row(
                    "64 B datums/s, 1→1, batch API (send_many / recv_batch)",
                    ours_batch,
                    "native",
                    figures["native"],
                    per_second,
                    "≥ 1.5× native",
                    at_least(1.5),
                )
            )
            runner.rows.append(
                Row(
                    "64 B datums/s, 1→1, plain send / async for",
                    figures["ours plain"],
                    "native",
                    figures["native"],
                    per_second,
                    "≥ 0.5× native",
                    at_least(0.5),
                )
            )
        alternatives = [
            ("zmq", "zmq-pubsub", "pyzmq PUB/SUB", "zmq", 2.0),
            ("zmq", "zmq-pushpull", "pyzmq PUSH/PULL", "zmq", 2.0),
            ("zenoh", "zenoh", "zenoh", "zenoh", 1.0),
        ]
        for key, kind, label, module, factor in alternatives:
            if not wanted(key) or (kind == "zmq-pushpull" and not s.push_pull):
                continue
            anchor = Figure(skipped=missing_module(module))
            if not anchor.skipped:
                log(f"64 B vs {label}")
                argv = suite.alternative(kind)
                measure = runner.stream(label, argv, lossy=kind == "zmq-pubsub", size=64)
                anchor = runner.interleaved({label: measure}, s.runs)[label]
            runner.rows.append(
                Row(
                    f"64 B datums/s vs {label} (ours: batch API)",
                    ours_batch,
                    label,
                    anchor,
                    per_second,
                    f"≥ {factor:g}× {label.split()[0]}",
                    at_least(factor),
                )
            )

    for size, label in ((1024, "1 KiB"), (1 << 20, "1 MiB")):
        if not wanted(label.replace(" ", "").lower()):
            continue
        log(f"{label} throughput")
        figures = runner.interleaved(
            {
                "native": runner.stream(f"native {label}", native, size=size),
                "ours": runner.stream(f"ours {label}", ours, size=size),
            },
            s.runs,
        )
        for figure in figures.values():
            figure.values = [v * size / MIB for v in figure.values]
        runner.rows.append(
            Row(
                f"{label} datums, MiB/s, 1→1 (batch API)",
                figures["ours"],
                "native",
                figures["native"],
                mib_per_s,
                "≥ 1.0× native",
                at_least(1.0),
            )
        )

    if wanted("latency"):
        log("latency, 64 B at 1000/s")
        p50 = {"native": Figure(), "ours": Figure()}
        p99 = {"native": Figure(), "ours": Figure()}
        for run in range(s.runs):
            for name, argv in (("native", native), ("ours", ours)):

                def latency_run(argv: list[str] = argv, name: str = name) -> float:
                    result = suite.stream_run(
                        argv,
                        size=64,
                        mode="plain",
                        rate=LATENCY_RATE,
                        window_s=s.latency_window_s,
                    )
                    if not result.latencies_ns:
                        raise BenchError("no latency samples")
                    p99[name].values.append(percentile(result.latencies_ns, 99) / 1000)
                    return percentile(result.latencies_ns, 50) / 1000

                runner.sample(f"{name} #{run + 1}", p50[name], latency_run, s.retries)
        runner.rows.append(
            Row(
                "one-way latency p50, 64 B at 1000/s",
                p50["ours"],
                "native",
                p50["native"],
                micros,
                "≤ native + 30 µs",
                lambda ours, anchor: ours <= anchor + 30,
            )
        )
        runner.rows.append(
            Row(
                "one-way latency p99, 64 B at 1000/s",
                p99["ours"],
                "native",
                p99["native"],
                micros,
                "≤ 2× native",
                at_most(2.0),
            )
        )

    if wanted("fanout"):
        n, procs = s.fanout_consumers, s.fanout_processes
        log(f"fan-out 1→{n}")
        fan: dict[str, Any] = {
            "size": 64,
            "consumers": n,
            "processes": procs,
            "warmup_s": max(s.warmup_s, s.fanout_warmup_s),
        }
        figures = runner.interleaved(
            {
                "native": runner.stream("native fan-out", native, **fan),
                "ours": runner.stream("ours fan-out", ours, **fan),
            },
            s.runs,
        )
        runner.rows.append(
            Row(
                f"fan-out 1→{n} (64 B, batch API), aggregate datums/s",
                figures["ours"],
                "native",
                figures["native"],
                per_second,
                "≥ 1.0× native",
                at_least(1.0),
            )
        )

    if wanted("converge"):
        log(f"discovery convergence, {s.converge_nodes} nodes")
        figures = runner.interleaved(
            {
                "native": lambda: suite.converge_run(native),
                "ours": lambda: suite.converge_run(ours),
            },
            s.runs,
            retries=0,  # a run that does not converge is a result, not a fluke
        )
        runner.rows.append(
            Row(
                f"discovery: {s.converge_nodes} nodes on one bootstrap, time to full catalogs",
                figures["ours"],
                "native",
                figures["native"],
                seconds,
                "≤ 1.0× native",
                at_most(1.0),
            )
        )

    if wanted("memory"):
        memory_rows(suite, runner)
    return runner


def memory_rows(suite: Suite, runner: Runner) -> None:
    s = suite.settings
    log(f"memory: consumer stops reading for {s.pause_s:.0f} s")
    growth: dict[str, tuple[int, int]] = {}
    resumed: dict[str, float] = {}
    largest = {"native": Figure(), "ours": Figure()}
    for name, argv in (("native", suite.native()), ("ours", suite.ours())):

        def paused(argv: list[str] = argv, name: str = name) -> float:
            run = suite.stream_run(argv, size=64, flow="default", pause_s=s.pause_s, window_s=1.0)
            assert run.rss_growth_kib is not None
            growth[name] = run.rss_growth_kib
            resumed[name] = run.rate
            return float(max(run.rss_growth_kib))

        runner.sample(name, largest[name], paused, s.retries)

    def cell(name: str) -> str | None:
        if name not in growth:
            return None
        producer, consumer = growth[name]
        return (
            f"producer +{kib(producer)}, consumer +{kib(consumer)}; "
            f"{per_second(resumed[name])}/s in the second after reading again"
        )

    runner.rows.append(
        Row(
            f"memory: consumer stops reading {s.pause_s:.0f} s, producer at full rate, "
            "RSS growth (1 run; ratio of the larger)",
            largest["ours"],
            "native",
            largest["native"],
            kib,
            "≤ 64 MiB each",
            lambda ours, _anchor: ours <= 64 * 1024,
            ours_cell=cell("ours"),
            anchor_cell=cell("native"),
        )
    )

    log(f"memory per idle node ({s.idle_nodes} nodes)")
    figures = runner.interleaved(
        {
            "native": lambda: suite.idle_node_run(suite.native()),
            "ours": lambda: suite.idle_node_run(suite.ours()),
        },
        s.memory_runs,
    )
    runner.rows.append(
        Row(
            f"memory per idle node ({s.idle_nodes} joined, RSS delta / node)",
            figures["ours"],
            "native",
            figures["native"],
            kib,
            "reported",
        )
    )
    log(f"memory per subscription ({s.subscriptions} streams)")
    figures = runner.interleaved(
        {
            "native": lambda: suite.subscription_run(suite.native()),
            "ours": lambda: suite.subscription_run(suite.ours()),
        },
        s.memory_runs,
    )
    runner.rows.append(
        Row(
            f"memory per subscription ({s.subscriptions}; producer + consumer RSS delta / sub)",
            figures["ours"],
            "native",
            figures["native"],
            kib,
            "reported",
        )
    )


# --------------------------------------------------------------------------
# The report


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        memory = f"{memory_kib / MIB:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown memory"
    return f"{model}, {os.cpu_count()} cores, {memory}, {platform.platform()}"


def installed_mosaik() -> tuple[str, list[str]]:
    """Where the measured package lives, plus warnings about it."""
    import mosaik
    import mosaik._mosaik as native

    warnings = []
    library = Path(native.__file__ or "")
    size_mb = library.stat().st_size / 1e6 if library.exists() else 0.0
    if size_mb > 100:
        warnings.append(
            f"the installed `mosaik` native library is {size_mb:.0f} MB, which looks like a "
            "development build: install a release wheel (`pip install .`)"
        )
    try:
        from importlib.metadata import version

        release = version("mosaik-net")
    except Exception:  # the version only labels the report
        release = "unknown version"
    return f"mosaik-net {release} at {Path(mosaik.__file__).parent} ({size_mb:.0f} MB)", warnings


def repository_state() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head or "unknown"


def report(
    runner: Runner, settings: Settings, argv: list[str], elapsed_s: float, notes: list[str]
) -> str:
    package, warnings = installed_mosaik()
    lines = [
        "# Benchmark results",
        "",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- machine: {machine()}",
        f"- python: {platform.python_implementation()} {platform.python_version()}",
        f"- measured: {package}; native: mosaik 0.3.13 (tests/interop, release build); "
        f"repository at {repository_state()}",
        *(f"- note: {note}" for note in notes),
        f"- command: `{' '.join(['python benches/run.py', *argv])}`",
        f"- settings: {settings.runs} runs per figure, {settings.warmup_s:g} s warm-up, "
        f"{settings.window_s:g} s window ({settings.latency_window_s:g} s for latency); "
        f"suite took {elapsed_s / 60:.1f} min",
        "",
        "Figures: median (min–max) over the runs; ratio = ours / anchor.",
        "",
        "| measure | ours | anchor | ratio | target | met |",
        "|---|---|---|---:|---|---|",
    ]
    lines += [row.markdown() for row in runner.rows]
    notes = list(warnings)
    for name, deliveries in runner.deliveries.items():
        notes.append(
            f"{name} drops at its high-water mark ({HWM_NOTE}): the consumer received "
            f"{statistics.median(deliveries):.1%} (lowest {min(deliveries):.1%}) of the datums "
            "sent during its window (the rest was dropped or still queued)"
        )
    for row in runner.rows:
        for side, figure in (("ours", row.ours), (row.anchor_name, row.anchor)):
            for failure in figure.failures[:1]:
                notes.append(f"{row.measure}, {side}: {failure.splitlines()[0][:300]}")
    notes += runner.suite.notes
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in dict.fromkeys(notes)]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmarks against native mosaik, pyzmq and zenoh (issue 5)."
    )
    parser.add_argument("--quick", action="store_true", help="3 runs, short windows (< 2 min)")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument("--note", action="append", default=[], help="a line for the header")
    parser.add_argument(
        "--only",
        action="append",
        choices=["64b", "zmq", "zenoh", "1kib", "1mib", "latency", "fanout", "converge", "memory"],
        help="run only these groups (repeatable)",
    )
    parser.add_argument("--no-unshare", action="store_true", help="do not enter a namespace")
    parser.add_argument("--peer", type=Path, help="use this reference-peer binary, do not build")
    parser.add_argument(
        "--groups",
        action="store_true",
        help="run the consensus group suite (benches/groups.py) with the other options instead",
    )
    parser.add_argument("--inside-namespace", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> int:
    argv = sys.argv[1:]
    if "--groups" in argv:
        import groups  # benches/groups.py: consensus groups against native mosaik and PySyncObj

        return groups.main([a for a in argv if a != "--groups"])
    args = parse_args(argv)
    if not args.inside_namespace:
        peer = args.peer or build_peer()
        if not args.no_unshare:
            if not can_unshare():
                sys.exit(
                    "unshare --net is not available here (it needs root or user namespaces). "
                    "Pass --no-unshare to run on the host anyway: every node binds 127.0.0.1, "
                    "but the native peer's iroh endpoints also try their default DNS and "
                    "pkarr address lookups, which leave the machine."
                )
            log("entering a network namespace with only loopback (unshare --net)")
            inner = [__file__, *argv, "--inside-namespace", "--peer", str(peer)]
            return reexec_in_namespace(inner)
        args.peer = peer

    public = [a for a in argv if a != "--inside-namespace"]
    if "--peer" in public:  # added by the re-exec, not typed by the user
        i = public.index("--peer")
        del public[i : i + 2]
    settings = QUICK if args.quick else FULL
    started = time.monotonic()
    suite = Suite(settings, args.peer)
    try:
        runner = run_rows(suite, set(args.only) if args.only else None)
    finally:
        suite.close()
    text = report(runner, settings, public, time.monotonic() - started, args.note)
    print(text)
    if args.output:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
