"""Consensus group benchmarks: our groups against native Rust mosaik 0.3.13
and PySyncObj 0.3.17, three members on loopback, measured in the same run.

    pip install .                      # the mosaik package measured: a RELEASE wheel
    pip install '.[bench]'             # pysyncobj (its column is skipped without)
    python benches/groups.py           # full: 5 runs per figure, 1M-entry memory row
    python benches/groups.py --quick   # 3 runs, short windows, 100k entries: < 3 min
    python benches/run.py --groups ... # the same, from the suite's entry point

Like ``benches/run.py`` it measures the installed ``mosaik`` package, builds
the native reference peer (``cargo build --release -p mosaik-interop-peer``)
and re-executes itself inside a network namespace holding only loopback.

How it measures:

- A run forms one group of three members per side, each member its own
  process: ours ``benches/_group_worker.py ours`` (``local=True``, meeting
  through the first member's address), native the reference peer's
  ``bench_group_*`` commands (``tests/interop/src/group_bench.rs``, on the
  local relay, meeting by catalog syncs), PySyncObj ``_group_worker.py
  pysyncobj`` on 127.0.0.1 ports. The machine is the reference peer's
  ``Counter`` (``i64`` commands; ours applies them in Python), with default
  consensus settings on every side. Sides are interleaved run by run.
- Latency: sequential ``execute(1)`` calls timed inside the member (Rust
  for native, so no JSON round trip is measured), on the leader and on a
  follower; p50 and p99 per run. Sampling stops after ``latency_s``
  (PySyncObj, at ~0.1 s a call, gets fewer samples than the count).
- Throughput, from the leader: ``execute_many`` batches from a few
  concurrent loops, and many concurrent single ``execute`` calls; native
  the same calls in Rust; PySyncObj asynchronous (callback) calls with the
  same number of commands in flight. Commands whose call returned inside
  the window, after a warm-up. The same members also hold a NoOp group
  (mosaik's, no machine to apply), whose batched row shows the consensus
  path without our Python ``apply``.
- Failover: both followers start an ``execute(1)`` every 10 ms; the leader
  process is killed (SIGKILL); the figure is the time from the kill until a
  write started after it commits on each survivor (the later of the two).
  Default timers everywhere (ours and native: 500 ms heartbeats, 2-2.5 s
  election timeout; PySyncObj: 0.4-1.4 s).
- Memory: RSS of each member process (from ``/proc``) once the group has
  formed and after the leader committed a log of ``i64`` commands
  (``execute_many`` of 1000 from 4 loops; PySyncObj: 1000 async calls in
  flight) and every member reached it. PySyncObj compacts its log past
  5000 entries by default (a forked snapshot); mosaik keeps every entry.
- A group that does not form (native mosaik 0.3.13 now and then leaves a
  bond or a catalog sync hanging) is formed again once; a step that fails
  skips the rest of its run. Failures are counted in the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import signal
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _payloads import rss_kib  # noqa: E402 - the benches folder is not a package
from _process import BenchError, Json, Process  # noqa: E402
from run import (  # noqa: E402
    Figure,
    build_peer,
    can_unshare,
    installed_mosaik,
    log,
    machine,
    percentile,
    reexec_in_namespace,
    repository_state,
)

BENCHES = Path(__file__).resolve().parent
WORKER = BENCHES / "_group_worker.py"
MEMBERS = 3
KEY = "bench-group-secret"
SIDES = ("ours", "native", "pysyncobj")
NAMES = {"ours": "ours", "native": "native mosaik 0.3.13", "pysyncobj": "PySyncObj 0.3.17"}
#: Bonding tries for native members: mosaik 0.3.13 drops both connections
#: when two members dial each other at once, and dials again only on a
#: catalog change (groups-protocol.md §2.6); a nudge is such a change.
NUDGES = 5
NUDGE_WAIT_MS = 1500
PROBE_EVERY_MS = 10


@dataclass(frozen=True)
class Settings:
    runs: int
    latency_count: int
    latency_warmup: int
    # Latency samples stop after this long (PySyncObj takes ~0.1 s a call).
    latency_s: float
    warmup_s: float
    window_s: float
    # Probes run this long at most; the leader dies this long after they start.
    probe_s: float
    kill_after_s: float
    memory_entries: int
    # Forming a group: default bootstrap delay (3 s) plus an election (2-2.5 s).
    ready_timeout_s: float
    retries: int
    # Throughput shapes: (lanes, batch) for execute_many, in flight for execute.
    lanes: int = 4
    batch: int = 1000
    concurrent: int = 256


FULL = Settings(
    runs=5,
    latency_count=1000,
    latency_warmup=50,
    latency_s=10.0,
    warmup_s=1.0,
    window_s=3.0,
    probe_s=10.0,
    kill_after_s=0.5,
    memory_entries=1_000_000,
    ready_timeout_s=20.0,
    retries=1,
)
QUICK = Settings(
    runs=3,
    latency_count=300,
    latency_warmup=10,
    latency_s=2.0,
    warmup_s=0.3,
    window_s=1.0,
    probe_s=8.0,
    kill_after_s=0.3,
    memory_entries=100_000,
    ready_timeout_s=15.0,
    retries=1,
)


# --------------------------------------------------------------------------
# Forming a group


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now (for PySyncObj, which needs them up front)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def answers(
    processes: Sequence[Process], command: Json | Sequence[Json], limit: float
) -> list[Json]:
    """Sends a command to every process at once, then reads every answer."""
    commands = [command] * len(processes) if isinstance(command, dict) else list(command)
    for process, cmd in zip(processes, commands):
        process.send(cmd)
    return [process.answer(limit) for process in processes]


@dataclass(frozen=True)
class Membership:
    """One group the members of a cluster joined."""

    group_id: str
    leader: int  # index into the members
    leader_id: str


@dataclass
class Cluster:
    side: str
    members: list[Process]
    groups: dict[str, Membership]  # by machine: "counter", and "noop" if joined

    @property
    def counter(self) -> Membership:
        return self.groups["counter"]

    @property
    def leader(self) -> int:
        return self.counter.leader

    @property
    def followers(self) -> list[int]:
        return [i for i in range(len(self.members)) if i != self.leader]

    def ask(self, member: int, command: Json, limit: float, machine: str = "counter") -> Json:
        group_id = self.groups[machine].group_id
        return self.members[member].ask({**command, "group_id": group_id}, limit)


class Bench:
    def __init__(self, settings: Settings, peer: Path) -> None:
        self.settings = settings
        self.peer = peer
        self._stack = ExitStack()
        relay = self._stack.enter_context(Process("relay", [str(peer)]))
        self.relay: str = relay.ask({"cmd": "relay"}, 10)["url"]

    def close(self) -> None:
        self._stack.close()

    def argv(self, side: str) -> list[str]:
        if side == "native":
            return [str(self.peer)]
        return [sys.executable, str(WORKER), side]

    @contextmanager
    def cluster(self, side: str, machines: Sequence[str] = ("counter",)) -> Iterator[Cluster]:
        """Three members of ``side`` in a group of each machine (PySyncObj:
        its one counter), every group bonded with a leader."""
        if side == "pysyncobj":
            machines = ("counter",)
        with ExitStack() as stack:
            members = [
                stack.enter_context(Process(f"{side} member {i}", self.argv(side)))
                for i in range(MEMBERS)
            ]
            if side == "ours":
                group_ids = self._form_ours(members, machines)
            elif side == "native":
                group_ids = self._form_native(members, machines)
            else:
                group_ids = self._form_pysyncobj(members)
            groups = {}
            for machine, group_id in zip(machines, group_ids):
                ready = answers(
                    members,
                    {
                        "cmd": "bench_group_ready",
                        "group_id": group_id,
                        "bonds": MEMBERS - 1,
                        "timeout_ms": int(self.settings.ready_timeout_s * 1000),
                    },
                    self.settings.ready_timeout_s + 5,
                )
                leaders = {str(r["leader"]) for r in ready}
                leading = [i for i, r in enumerate(ready) if r["is_leader"]]
                if len(leaders) != 1 or len(leading) != 1:
                    raise BenchError(f"{side}: members disagree on the {machine} leader: {ready}")
                groups[machine] = Membership(group_id, leading[0], leaders.pop())
            yield Cluster(side, members, groups)

    def _join(self, member: Process, machines: Sequence[str]) -> list[str]:
        return [
            str(member.ask({"cmd": "bench_group_join", "key": KEY, "machine": m}, 10)["group_id"])
            for m in machines
        ]

    def _form_ours(self, members: list[Process], machines: Sequence[str]) -> list[str]:
        network = f"bench-{uuid.uuid4().hex[:12]}"
        first = members[0].ask({"cmd": "start", "network": network, "relay": self.relay}, 10)
        start = {"cmd": "start", "network": network, "relay": self.relay}
        answers(members[1:], {**start, "bootstrap": [first["address"]]}, 10)
        return [self._join(member, machines) for member in members][0]

    def _form_native(self, members: list[Process], machines: Sequence[str]) -> list[str]:
        network = f"bench-{uuid.uuid4().hex[:12]}"
        started = answers(members, {"cmd": "start", "network": network, "relay": self.relay}, 25)
        # Direct addresses only: a first dial that also tries the relay path
        # can stall in iroh 0.97 (see `direct_only` in tests/interop/src/bench.rs).
        addresses = [{**s["addr"], "relay": []} for s in started]
        # Each member learns the first member's catalog (which lists the
        # groups and the members joined so far) before it joins, so that its
        # workers dial them. One sync each: a second dial, to a peer whose
        # relay address the catalog carries, is the one that stalls most.
        # A stalled sync is left to the nudges below.
        group_ids: list[str] = []
        for i, member in enumerate(members):
            if i > 0:
                self._sync(member, addresses[0])
            group_ids = self._join(member, machines)
        peer_ids = [str(s["peer_id"]) for s in started]
        for nudge in range(NUDGES):
            missing: set[tuple[int, int]] = set()
            for group_id in group_ids:
                wait = {
                    "cmd": "bench_group_ready",
                    "group_id": group_id,
                    "bonds": MEMBERS - 1,
                    "leader": False,
                    "strict": False,
                    "timeout_ms": NUDGE_WAIT_MS,
                }
                waited = answers(members, wait, NUDGE_WAIT_MS / 1000 + 5)
                missing |= {
                    (i, j)
                    for i in range(len(members))
                    for j in range(i + 1, len(members))
                    if peer_ids[j] not in waited[i]["peers"]
                    or peer_ids[i] not in waited[j]["peers"]
                }
            if not missing:
                return group_ids
            # Only `i` dials: `j` re-signs its entry, `i` pulls it.
            for i, j in sorted(missing):
                members[j].ask({"cmd": "add_tags", "tags": [f"nudge-{nudge}-{i}"]}, 5)
                self._sync(members[i], addresses[j])
        raise BenchError(f"native members did not all bond after {NUDGES} nudges")

    @staticmethod
    def _sync(member: Process, address: Json) -> None:
        """A catalog sync, best effort: the peer answers a failure after 10 s."""
        try:
            member.ask({"cmd": "sync", "addr": address}, 15)
        except BenchError as error:
            log(f"  {member.name}: {str(error).splitlines()[0][:200]} (left to the nudges)")

    def _form_pysyncobj(self, members: list[Process]) -> list[str]:
        ports = free_ports(len(members))
        for i, member in enumerate(members):
            partners = [p for j, p in enumerate(ports) if j != i]
            member.ask({"cmd": "start", "port": ports[i], "partners": partners}, 10)
        return ["pysyncobj"]


# --------------------------------------------------------------------------
# Measuring

#: Rows measured on every run's group, by key.
LATENCY_KEYS = ("leader p50", "leader p99", "follower p50", "follower p99")
THROUGHPUT_KEYS = ("batched", "concurrent", "noop batched")
STEPS = ("latency", "throughput", "failover")


@dataclass
class Results:
    figures: dict[str, dict[str, Figure]] = field(default_factory=dict)
    # Per side: seconds from the kill until a survivor saw the new leader.
    elected_s: dict[str, list[float]] = field(default_factory=dict)
    memory: dict[str, Json] = field(default_factory=dict)
    # Per side: groups formed, and how many of them did not form.
    formed: dict[str, list[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def formation(self, side: str, failed: bool) -> None:
        counts = self.formed.setdefault(side, [0, 0])
        counts[0] += 1
        counts[1] += int(failed)

    def figure(self, key: str, side: str) -> Figure:
        return self.figures.setdefault(key, {}).setdefault(side, Figure())


class Runs:
    def __init__(self, bench: Bench, results: Results, steps: set[str]) -> None:
        self.bench = bench
        self.s = bench.settings
        self.results = results
        self.steps = steps
        self.broken: str | None = None

    def keys(self) -> list[str]:
        keys: list[str] = []
        if "latency" in self.steps:
            keys += LATENCY_KEYS
        if "throughput" in self.steps:
            keys += THROUGHPUT_KEYS
        if "failover" in self.steps:
            keys.append("failover")
        return keys

    def run(self, side: str, label: str) -> None:
        """One group of this side, every step measured on it. A group that
        does not form is tried again up to ``retries`` times."""
        for attempt in range(1 + self.s.retries):
            started = time.monotonic()
            self.broken = None
            try:
                machines = ("counter", "noop") if "throughput" in self.steps else ("counter",)
                with self.bench.cluster(side, machines) as cluster:
                    log(f"  {label}: formed in {time.monotonic() - started:.1f} s")
                    self.results.formation(side, failed=False)
                    self.measure(cluster, label)
                return
            except (BenchError, OSError, KeyError, ValueError) as error:
                message = str(error).splitlines()[0][:300]
                log(f"  {label}: group FAILED (attempt {attempt + 1}): {message}")
                self.results.formation(side, failed=True)
                if attempt == self.s.retries:
                    for key in self.keys():
                        self.results.figure(key, side).failures.append(f"group: {message}")

    def step(self, label: str, keys: Sequence[str], side: str, measure: Callable[[], None]) -> None:
        """One measurement on the run's group. After a failure the group's
        members may still be busy with it (their answers would come out of
        order), so the run's later steps are skipped."""
        if self.broken is not None:
            for key in keys:
                self.results.figure(key, side).failures.append(self.broken)
            return
        try:
            measure()
        except (BenchError, OSError, KeyError, ValueError, TypeError) as error:
            message = str(error).splitlines()[0][:300]
            log(f"  {label}: FAILED {message}")
            for key in keys:
                self.results.figure(key, side).failures.append(message)
            self.broken = f"skipped after a failure in this run: {message}"

    def measure(self, cluster: Cluster, label: str) -> None:
        side = cluster.side
        s = self.s
        if "latency" in self.steps:
            for role, member in (("leader", cluster.leader), ("follower", cluster.followers[0])):

                def latency(member: int = member, role: str = role) -> None:
                    answer = cluster.ask(
                        member,
                        {
                            "cmd": "bench_group_latency",
                            "count": s.latency_count,
                            "warmup": s.latency_warmup,
                            "seconds": s.latency_s,
                            "timeout_ms": 10_000,
                        },
                        s.latency_s + 60,
                    )
                    samples = answer["latencies_ns"]
                    p50, p99 = percentile(samples, 50) / 1e6, percentile(samples, 99) / 1e6
                    self.results.figure(f"{role} p50", side).values.append(p50)
                    self.results.figure(f"{role} p99", side).values.append(p99)
                    log(f"  {label}: {role} latency p50 {p50:.3f} ms, p99 {p99:.3f} ms")

                self.step(label, (f"{role} p50", f"{role} p99"), side, latency)
        if "throughput" in self.steps:
            shapes = [
                ("batched", "counter", s.lanes, s.batch),
                ("concurrent", "counter", s.concurrent, 1),
            ]
            if "noop" in cluster.groups:
                shapes.append(("noop batched", "noop", s.lanes, s.batch))
            for key, machine, lanes, batch in shapes:

                def throughput(
                    key: str = key, machine: str = machine, lanes: int = lanes, batch: int = batch
                ) -> None:
                    answer = cluster.ask(
                        cluster.groups[machine].leader,
                        {
                            "cmd": "bench_group_throughput",
                            "seconds": s.window_s,
                            "warmup_s": s.warmup_s,
                            "batch": batch,
                            "concurrency": lanes,
                            "timeout_ms": 10_000,
                        },
                        s.warmup_s + s.window_s + 30,
                        machine,
                    )
                    rate = answer["commands"] / (answer["window_ns"] / 1e9)
                    self.results.figure(key, side).values.append(rate)
                    log(f"  {label}: {key} {rate:,.0f} commands/s")

                self.step(label, (key,), side, throughput)
        if "failover" in self.steps:
            self.step(label, ("failover",), side, lambda: self.failover(cluster, label))

    def failover(self, cluster: Cluster, label: str) -> None:
        s = self.s
        old = cluster.counter.leader_id
        probe = {
            "cmd": "bench_group_probe",
            "group_id": cluster.counter.group_id,
            "old_leader": old,
            "every_ms": PROBE_EVERY_MS,
            "seconds": s.probe_s,
        }
        survivors = [cluster.members[i] for i in cluster.followers]
        for member in survivors:
            member.send(probe)
        time.sleep(s.kill_after_s)
        killed_ns = time.monotonic_ns()
        os.kill(cluster.members[cluster.leader].pid, signal.SIGKILL)
        resumed: list[float | None] = []
        elected: list[float | None] = []
        answered: list[Json] = []
        for member in survivors:
            answer = member.answer(s.probe_s + 15)
            answered.append(answer)
            probes = answer["probes"]
            if not any(ok and end < killed_ns for start, end, ok in probes if end is not None):
                raise BenchError(f"{member.name}: no write committed before the kill")
            after = [end for start, end, ok in probes if ok and start >= killed_ns]
            resumed.append((min(after) - killed_ns) / 1e9 if after else None)
            changed = answer.get("changed_ns")
            elected.append((changed - killed_ns) / 1e9 if changed else None)
        seen = "; ".join(
            f"{m.name}: new leader seen {seconds(e) if e is not None else 'never'}, "
            f"writes {seconds(r) if r is not None else 'never'}"
            + (f", then {a['status']}" if "status" in a and r is None else "")
            for m, e, r, a in zip(survivors, elected, resumed, answered)
        )
        if any(r is None for r in resumed):
            raise BenchError(f"writes did not resume within {s.probe_s:g} s of probing ({seen})")
        value = max(r for r in resumed if r is not None)
        self.results.figure("failover", cluster.side).values.append(value)
        if all(e is not None for e in elected):
            self.results.elected_s.setdefault(cluster.side, []).append(
                max(e for e in elected if e is not None)
            )
        log(f"  {label}: after the kill: {seen}")

    def memory(self, side: str) -> None:
        """RSS of each member once formed, and after the log holds the
        entries. A group that does not form is tried again like a run's."""
        for attempt in range(1 + self.s.retries):
            try:
                self.results.memory[side] = self.memory_run(side)
                self.results.formation(side, failed=False)
                return
            except (BenchError, OSError, KeyError, ValueError) as error:
                message = str(error).splitlines()[0][:300]
                log(f"  memory {side}: FAILED (attempt {attempt + 1}): {message}")
                self.results.memory[side] = {"failed": message}
                self.results.formation(side, failed=True)

    def memory_run(self, side: str) -> Json:
        entries = self.s.memory_entries
        with self.bench.cluster(side) as cluster:
            pids = [m.pid for m in cluster.members]
            time.sleep(1.0)
            formed = [rss_kib(pid) for pid in pids]
            filled = cluster.ask(
                cluster.leader,
                {
                    "cmd": "bench_group_fill",
                    "entries": entries,
                    "batch": 1000,
                    "concurrency": 4,
                    "timeout_ms": 600_000,
                },
                620,
            )
            answers(
                cluster.members,
                {
                    "cmd": "bench_group_wait_committed",
                    "group_id": cluster.counter.group_id,
                    "index": filled["committed"],
                    "timeout_ms": 60_000,
                },
                70,
            )
            time.sleep(1.0)
            after = [rss_kib(pid) for pid in pids]
        log(f"  memory {side}: formed {formed} KiB, after {entries:,} entries {after} KiB")
        return {
            "formed_kib": formed,
            "after_kib": after,
            "leader": cluster.leader,
            "fill_s": filled["elapsed_ms"] / 1000,
        }


# --------------------------------------------------------------------------
# The report


def millis(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"


def per_second(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f}M/s"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k/s"
    return f"{value:.0f}/s"


def seconds(value: float) -> str:
    return f"{value:.2f} s"


def mib(kib: float) -> str:
    return f"{kib / 1024:.0f} MiB"


@dataclass(frozen=True)
class Row:
    key: str
    measure: str
    fmt: Callable[[float], str]
    target: str
    # (ours, native, pysyncobj) medians, the last two None when missing.
    met: Callable[[float, float | None, float | None], bool] | None
    notes: str = ""
    anchored: bool = False  # the target names native and PySyncObj figures


def rows(s: Settings) -> list[Row]:
    inflight = s.lanes * s.batch

    def throughput_met(ours: float, native: float | None, pso: float | None) -> bool:
        assert native is not None and pso is not None
        return ours >= 20_000 and ours >= native and ours >= 1.5 * pso

    return [
        Row(
            "leader p50",
            "`execute` latency on the leader, p50",
            millis,
            "≤ 1 ms",
            lambda ours, _n, _p: ours <= 1.0,
        ),
        Row(
            "leader p99",
            "`execute` latency on the leader, p99",
            millis,
            "≤ 5 ms",
            lambda ours, _n, _p: ours <= 5.0,
        ),
        Row(
            "follower p50",
            "`execute` latency from a follower, p50",
            millis,
            "≤ 3 ms",
            lambda ours, _n, _p: ours <= 3.0,
        ),
        Row("follower p99", "`execute` latency from a follower, p99", millis, "reported", None),
        Row(
            "batched",
            f"commands/s from the leader: `execute_many` of {s.batch} from {s.lanes} loops",
            per_second,
            "≥ 20k/s, ≥ 1.5× PySyncObj, ≥ 1× native",
            throughput_met,
            f"PySyncObj: async calls, {inflight} in flight",
            anchored=True,
        ),
        Row(
            "concurrent",
            f"commands/s from the leader: {s.concurrent} concurrent `execute`",
            per_second,
            "≥ 20k/s, ≥ 1.5× PySyncObj, ≥ 1× native",
            throughput_met,
            f"PySyncObj: async calls, {s.concurrent} in flight",
            anchored=True,
        ),
        Row(
            "noop batched",
            f"commands/s from the leader, NoOp machine: `execute_many` of {s.batch} "
            f"from {s.lanes} loops",
            per_second,
            "reported",
            None,
            "no Python `apply` (ours) and no machine at all: the consensus path alone",
        ),
        Row(
            "failover",
            "failover: leader SIGKILLed → a write commits on both survivors",
            seconds,
            "≤ 3.5 s",
            lambda ours, _n, _p: ours <= 3.5,
        ),
    ]


def ratio(ours: Figure, anchor: Figure | None, name: str) -> str | None:
    if anchor is None or not ours.values or not anchor.values or not anchor.median:
        return None
    value = ours.median / anchor.median
    return f"{value:.2f}× {name}" if value >= 0.1 else f"{value:.3f}× {name}"


def table(results: Results, s: Settings, sides: Sequence[str]) -> list[str]:
    lines = [
        "| measure | ours | native | PySyncObj | ratio | target | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows(s):
        if row.key not in results.figures:
            continue
        figures = results.figures[row.key]
        ours = figures.get("ours", Figure(skipped="not run"))
        native = figures.get("native", Figure(skipped="not run"))
        pso = figures.get("pysyncobj", Figure(skipped="not run"))
        ratios = [r for r in (ratio(ours, native, "native"), ratio(ours, pso, "PySyncObj")) if r]
        notes = []
        if row.met is not None and ours.values:
            anchors = tuple(f.median if f.values else None for f in (native, pso))
            if row.anchored and None in anchors:
                notes.append("not judged: an anchor is missing")
            else:
                met = row.met(ours.median, *anchors)
                notes.append("met" if met else "**not met**")
        if row.notes:
            notes.append(row.notes)
        if row.key == "failover":
            for side in sides:
                elected = results.elected_s.get(side)
                if elected:
                    notes.append(
                        f"{NAMES[side]}: survivors saw the new leader after "
                        f"{statistics.median(elected):.2f} s"
                    )
        cells = [ours.cell(row.fmt), native.cell(row.fmt), pso.cell(row.fmt)]
        lines.append(
            f"| {row.measure} | {' | '.join(cells)} | {', '.join(ratios) or '–'} | "
            f"{row.target} | {'; '.join(notes)} |"
        )
    if results.memory:
        cell = {side: "–" for side in SIDES}
        fills = []
        for side, memory in results.memory.items():
            if "failed" in memory:
                cell[side] = f"failed: {memory['failed']}"
                continue
            after, formed = memory["after_kib"], memory["formed_kib"]
            leader = memory["leader"]
            followers = [a for i, a in enumerate(after) if i != leader]
            growth = max(a - f for a, f in zip(after, formed))
            cell[side] = (
                f"leader {mib(after[leader])}, followers "
                f"{', '.join(mib(f) for f in followers)} (formed: {mib(max(formed))}; "
                f"+{mib(growth)} at most)"
            )
            fills.append(f"{NAMES[side]} filled it in {memory['fill_s']:.1f} s")
        lines.append(
            f"| memory: RSS per member after a {s.memory_entries:,}-entry log (`i64` commands) | "
            f"{cell['ours']} | {cell['native']} | {cell['pysyncobj']} | – | reported | "
            f"{'; '.join(fills)} |"
        )
    return lines


def pysyncobj_version() -> str:
    try:
        from importlib.metadata import version

        return version("pysyncobj")
    except Exception:  # only a label
        return ""


def report(
    results: Results, s: Settings, sides: Sequence[str], argv: list[str], elapsed_s: float
) -> str:
    package, warnings = installed_mosaik()
    lines = [
        "# Consensus group benchmark results",
        "",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- machine: {machine()}",
        f"- python: {platform.python_implementation()} {platform.python_version()}",
        f"- measured: {package}; native: mosaik 0.3.13 (tests/interop, release build); "
        f"PySyncObj {pysyncobj_version() or 'not installed'}; "
        f"repository at {repository_state()}",
        f"- command: `{' '.join(['python benches/groups.py', *argv])}`",
        f"- settings: {MEMBERS} members, each its own process, on loopback; {s.runs} runs "
        f"per figure (a fresh group per run and side, sides interleaved); latency "
        f"{s.latency_count} sequential `execute` after {s.latency_warmup}; throughput "
        f"{s.window_s:g} s window after {s.warmup_s:g} s; default consensus settings; "
        f"took {elapsed_s / 60:.1f} min",
        "",
        "Figures: median (min–max) over the runs; ratio = ours / other, of the medians.",
        "",
        *table(results, s, sides),
    ]
    notes = list(warnings) + results.notes
    for side, (tries, failed) in results.formed.items():
        if failed:
            notes.append(
                f"{NAMES[side]}: {failed} of {tries} groups did not form (or failed while "
                "measuring) and were formed again"
            )
    for key, figures in results.figures.items():
        for side, figure in figures.items():
            for failure in figure.failures[:1]:
                notes.append(f"{key}, {NAMES[side]}: {failure}")
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in dict.fromkeys(notes)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Consensus group benchmarks against native mosaik and PySyncObj."
    )
    parser.add_argument("--quick", action="store_true", help="3 runs, short windows (< 3 min)")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    parser.add_argument("--append", type=Path, help="append the report to this file")
    parser.add_argument(
        "--only", action="append", choices=[*STEPS, "memory"], help="these steps (repeatable)"
    )
    parser.add_argument(
        "--side", action="append", choices=SIDES, help="these sides only (repeatable)"
    )
    parser.add_argument("--runs", type=int, help="runs per figure (overrides the mode's)")
    parser.add_argument("--entries", type=int, help="memory row: log entries")
    parser.add_argument("--no-unshare", action="store_true", help="do not enter a namespace")
    parser.add_argument("--peer", type=Path, help="use this reference-peer binary, do not build")
    parser.add_argument("--inside-namespace", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if not args.inside_namespace:
        peer = args.peer or build_peer()
        if not args.no_unshare:
            if not can_unshare():
                sys.exit("unshare --net is not available here; pass --no-unshare to run anyway")
            log("entering a network namespace with only loopback (unshare --net)")
            inner = [__file__, *argv, "--inside-namespace", "--peer", str(peer)]
            return reexec_in_namespace(inner)
        args.peer = peer

    public = [a for a in argv if a != "--inside-namespace"]
    if "--peer" in public:  # added by the re-exec, not typed by the user
        i = public.index("--peer")
        del public[i : i + 2]
    s = QUICK if args.quick else FULL
    if args.runs:
        s = dataclasses.replace(s, runs=args.runs)
    if args.entries:
        s = dataclasses.replace(s, memory_entries=args.entries)
    sides = [side for side in SIDES if not args.side or side in args.side]
    results = Results()
    if "pysyncobj" in sides and not pysyncobj_version():
        sides.remove("pysyncobj")
        results.notes.append("PySyncObj is not installed (pip install '.[bench]'): skipped")
    steps = set(args.only) if args.only else {*STEPS, "memory"}

    started = time.monotonic()
    bench = Bench(s, args.peer)
    try:
        runs = Runs(bench, results, steps)
        if steps - {"memory"}:
            for run in range(s.runs):
                for side in sides:
                    log(f"run {run + 1}/{s.runs}, {NAMES[side]}")
                    runs.run(side, f"{side} #{run + 1}")
        if "memory" in steps:
            log(f"memory, {s.memory_entries:,} entries")
            for side in sides:
                runs.memory(side)
    finally:
        bench.close()
    text = report(results, s, sides, public, time.monotonic() - started)
    print(text)
    if args.output:
        args.output.write_text(text)
    if args.append:  # as a section of a longer file
        with args.append.open("a") as out:
            out.write("\n" + text.replace("# Consensus", "## Consensus", 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
