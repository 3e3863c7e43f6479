"""Groups stay linearizable under a nemesis (API.md, Groups: "histories of
execute and strong query are linearizable").

Three member processes (group_member.py), each on its own loopback address,
run a counter group with quorum=majority and client load against their own
member, while this test pauses the leader (SIGSTOP/SIGCONT), cuts a member
off with policy routing, and SIGKILLs a minority member. Every op is logged
with its invoke and completion times (time.monotonic(), shared by every
process on the machine); the merged history must be linearizable for a
counter (tests/linearizability.py), and writes must complete again after
every heal. The history is written under /tmp; it is kept when the test
fails (or with MOSAIK_KEEP_HISTORY=1).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import math
import os
import random
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_faults import in_own_network_namespace, partitioned

from linearizability import CheckResult, Op, check, format_op, from_records

MEMBER = Path(__file__).with_name("group_member.py")
MEMBERS = int(os.environ.get("MOSAIK_LINEAR_MEMBERS", "3"))
NETWORK = "linearizability"
#: Search steps the checker may take before it says "unknown".
BUDGET = 5_000_000
#: The bound on each wait for the group (start, a leader, writes after a heal).
WAIT = 20.0


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL it if the test process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Member:
    """A member process and everything it said on stdout."""

    def __init__(self, name: str, address: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.address = address
        self.process = process
        self.peer = ""
        self.net_address = ""
        self.ready = False
        self.done = False
        self.log: list[list[int]] | None = None
        self.final: dict[str, Any] | None = None  # its status when it showed its log
        self.status: dict[str, Any] | None = None
        self.statuses: list[dict[str, Any]] = []
        self.ops: list[dict[str, Any]] = []
        self.in_flight: dict[str, dict[str, Any]] = {}
        self.last_write = -math.inf  # invoke time of the latest successful add
        self.killed = False
        self.paused = False
        self.closing = False  # told to leave: exiting is expected
        self.exited = False
        self.stderr: deque[str] = deque(maxlen=5000)

    @property
    def live(self) -> bool:
        return not self.killed and not self.exited

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\n".encode())

    async def pump(self, changed: asyncio.Condition) -> None:
        assert self.process.stdout is not None
        while True:
            line = await self.process.stdout.readline()
            if not line:
                break
            record = json.loads(line)
            self.take(record)
            async with changed:
                changed.notify_all()
        self.exited = True
        async with changed:
            changed.notify_all()

    def take(self, record: dict[str, Any]) -> None:
        ev = record.pop("ev")
        if ev == "hello":
            self.peer = record["peer"]
            self.net_address = record["address"]
        elif ev == "status":
            self.status = record
            self.statuses.append(record)
        elif ev == "ready":
            self.ready = True
        elif ev == "invoke":
            self.in_flight[record["id"]] = record
        elif ev == "op":
            self.in_flight.pop(record["id"], None)
            self.ops.append(record)
            if record["kind"] == "add" and record["error"] is None:
                self.last_write = max(self.last_write, record["invoke"])
        elif ev == "done":
            self.done = True
        elif ev == "log":
            self.log = record["applied"]
            self.final = record["status"]

    async def drain_stderr(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.stderr.append(line.decode(errors="replace"))

    def records(self) -> list[dict[str, Any]]:
        """Its ops; a call it never saw return (it was killed) has no completion."""
        unfinished = [
            {
                "id": r["id"],
                "client": self.name,
                "kind": r["kind"],
                "value": r["value"],
                "invoke": r["t"],
                "complete": None,
                "result": None,
                "error": "NoReturn",
            }
            for r in self.in_flight.values()
        ]
        return self.ops + unfinished


class Cluster:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.members: list[Member] = []
        self.changed = asyncio.Condition()
        self.tasks: list[asyncio.Task[None]] = []
        self.events: list[tuple[float, str]] = []

    async def start(self, name: str, address: str, bootstrap: str) -> Member:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(MEMBER),
            name,
            address,
            NETWORK,
            bootstrap,
            str(MEMBERS),
            str(self.seed * 100 + len(self.members)),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,
            limit=1 << 24,  # the applied log comes as one line
        )
        member = Member(name, address, process)
        self.members.append(member)
        self.tasks.append(asyncio.create_task(member.pump(self.changed)))
        self.tasks.append(asyncio.create_task(member.drain_stderr()))
        return member

    async def until(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        """Waits for stdout lines until ``predicate()`` holds."""

        def holds() -> bool:
            died = [m for m in self.members if m.exited and not m.killed and not m.closing]
            if died:
                raise AssertionError(
                    f"{died[0].name} exited while waiting for {what}:\n"
                    + "".join(died[0].stderr)[-3000:]
                )
            return predicate()

        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(holds), timeout)
            except asyncio.TimeoutError:
                raise AssertionError(f"no {what} within {timeout:.0f} s") from None

    def note(self, what: str) -> float:
        now = time.monotonic()
        self.events.append((now, what))
        print(f"  {now - self.events[0][0]:6.2f} s  {what}")
        return now

    def live(self) -> list[Member]:
        return [m for m in self.members if m.live]

    def leader(self) -> Member | None:
        """The live, running member that says it leads, in the highest term."""
        leaders = [
            m
            for m in self.live()
            if not m.paused and m.status is not None and m.status["role"] == "leader"
        ]
        return max(leaders, key=lambda m: m.status["term"] if m.status else 0, default=None)

    async def current_leader(self) -> Member:
        await self.until(lambda: self.leader() is not None, "leader")
        leader = self.leader()
        assert leader is not None
        return leader

    def writes_since(self, moment: float) -> list[dict[str, Any]]:
        return [
            r
            for m in self.members
            for r in m.ops
            if r["kind"] == "add" and r["error"] is None and r["invoke"] >= moment
        ]

    async def writes_after(self, moment: float, what: str, count: int = 1) -> float:
        """Until ``count`` writes invoked after ``moment`` succeed; the
        seconds until the first did."""
        await self.until(
            lambda: (
                any(m.last_write >= moment for m in self.members)
                and len(self.writes_since(moment)) >= count
            ),
            f"{count} successful write(s) after {what}",
        )
        took = min(r["complete"] for r in self.writes_since(moment))
        self.note(f"writes complete again after {what}")
        return took - moment

    async def close(self) -> None:
        for member in self.members:
            if member.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member.process.pid, signal.SIGCONT)
                    member.process.kill()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(member.process.wait(), 10)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def cluster(seed: int) -> AsyncIterator[Cluster]:
    group = Cluster(seed)
    try:
        yield group
    finally:
        await group.close()


@contextlib.contextmanager
def paused(member: Member) -> Iterator[None]:
    os.kill(member.process.pid, signal.SIGSTOP)
    member.paused = True
    try:
        yield
    finally:
        os.kill(member.process.pid, signal.SIGCONT)
        member.paused = False


async def nemesis(group: Cluster, rng: random.Random, recoveries: dict[str, float]) -> None:
    """The faults, one at a time, each followed by a wait for writes."""
    go = group.note("load starts")
    recoveries["start"] = await group.writes_after(go, "the start")

    for n in (1, 2):
        await pause_leader(group, rng, recoveries, f"leader paused ({n})")
        await cut_off(group, rng, recoveries, f"leader cut off ({n})", leader=True)
        if n == 1:
            await cut_off(group, rng, recoveries, "follower cut off", leader=False)

    # Kill a minority member for good: the leader half the time. The load
    # goes on a little, so what follows the last fault is checked too.
    leader = await group.current_leader()
    others = [m for m in group.live() if m is not leader]
    victim = leader if rng.random() < 0.5 else rng.choice(others)
    victim.process.kill()
    victim.killed = True
    role = "leader" if victim is leader else "follower"
    heal = group.note(f"SIGKILL {role} {victim.name}")
    recoveries["member killed"] = await group.writes_after(heal, "the kill", count=20)


async def pause_leader(
    group: Cluster, rng: random.Random, recoveries: dict[str, float], what: str
) -> None:
    """SIGSTOP the leader for 2-4 s."""
    leader = await group.current_leader()
    pause = rng.uniform(2, 4)
    group.note(f"SIGSTOP leader {leader.name} for {pause:.1f} s")
    with paused(leader):
        await asyncio.sleep(pause)
    heal = group.note(f"SIGCONT {leader.name}")
    recoveries[what] = await group.writes_after(heal, what)


async def cut_off(
    group: Cluster, rng: random.Random, recoveries: dict[str, float], what: str, leader: bool
) -> None:
    """Partition the leader, or a follower, from everyone for 3-4 s."""
    current = await group.current_leader()
    member = current if leader else rng.choice([m for m in group.live() if m is not current])
    cut = rng.uniform(3, 4)
    role = "leader" if leader else "follower"
    group.note(f"partition {role} {member.name} ({member.address}) for {cut:.1f} s")
    with partitioned(member.address):
        await asyncio.sleep(cut)
    heal = group.note("partition healed")
    recoveries[what] = await group.writes_after(heal, what)


async def finish(group: Cluster) -> None:
    """The clients stop, the survivors show their applied logs and leave."""
    for member in group.live():
        member.send("stop")
    await group.until(lambda: all(m.done for m in group.live()), "end of the load", 30)
    group.note("load stopped")
    for member in group.live():
        member.send("dump")
    await group.until(lambda: all(m.log is not None for m in group.live()), "applied logs")
    for member in group.live():
        assert member.process.stdin is not None
        member.closing = True
        member.process.stdin.close()
    await group.until(lambda: all(m.exited for m in group.members), "members exiting")


@pytest.mark.timeout(150)
async def test_execute_and_strong_query_stay_linearizable_under_a_nemesis() -> None:
    if not in_own_network_namespace():
        pytest.skip("changes routing rules: only inside a loopback-only namespace (unshare -n)")
    seed = int(os.environ.get("MOSAIK_LINEAR_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    started = time.monotonic()
    print(f"\nseed {seed}, {MEMBERS} members")
    recoveries: dict[str, float] = {}
    failures: list[str] = []
    async with cluster(seed) as group:
        addresses = [f"127.0.0.{2 + i}" for i in range(MEMBERS)]
        first = await group.start("m0", addresses[0], "-")
        await group.until(lambda: bool(first.net_address), "hello from m0")
        for i in range(1, MEMBERS):
            await group.start(f"m{i}", addresses[i], first.net_address)
        await group.until(lambda: all(m.ready for m in group.members), "ready members")
        peers = {m.peer: m.name for m in group.members}
        group.note(f"{MEMBERS} members ready ({time.monotonic() - started:.1f} s after the start)")
        for member in group.members:
            member.send("go")
        stuck = False
        for phase in (nemesis(group, rng, recoveries), finish(group)):
            try:
                await phase
            except AssertionError as e:
                failures.append(f"LIVENESS: {e}")
                stuck = True
                if group.live() and not all(m.done for m in group.live()):
                    continue  # still try to stop the load and collect the logs
        events = [(t - started, what) for t, what in group.events]
        records = [r for m in group.members for r in m.records()]
        logs = {m.name: m.log for m in group.members if m.log is not None}
        # For the analysis of a failure: each member's views and what it logged.
        views = {m.name: {"statuses": m.statuses, "stderr": list(m.stderr)} for m in group.members}
        if stuck:
            failures.append(
                "the members when they stopped (last = the last log index):\n"
                + "\n".join(f"  {m.name}: {m.final}" for m in group.members if m.final)
            )

    judge(seed, peers, events, records, logs, views, recoveries, failures, started)


def judge(
    seed: int,
    peers: dict[str, str],
    events: list[tuple[float, str]],
    records: list[dict[str, Any]],
    logs: dict[str, list[list[int]]],
    views: dict[str, Any],
    recoveries: dict[str, float],
    failures: list[str],
    started: float,
) -> None:
    """Writes the history, checks it, and fails with everything found."""
    history = Path(f"/tmp/mosaik-linear-{int(time.time())}-{seed}.json")
    history.write_text(
        json.dumps(
            {
                "seed": seed,
                "started": started,
                "peers": peers,
                "events": events,
                "ops": records,
                "logs": logs,
                "members": views,
            },
            indent=1,
        )
    )
    ops = from_records(records)
    checking = time.monotonic()
    result = check(ops, budget=BUDGET)
    check_took = time.monotonic() - checking
    failures = findings(result, records, ops, logs) + failures
    print(summary(records, ops, result, check_took, recoveries, time.monotonic() - started))
    if failures:
        pytest.fail("\n\n".join(failures) + f"\n\nhistory kept at {history}", pytrace=False)
    if os.environ.get("MOSAIK_KEEP_HISTORY"):
        print(f"history at {history}")
    else:
        history.unlink()


def findings(
    result: CheckResult,
    records: list[dict[str, Any]],
    ops: list[Op],
    logs: dict[str, list[list[int]]],
) -> list[str]:
    failures: list[str] = []
    if result.outcome == "violation":
        failures.append(f"NOT LINEARIZABLE ({result.steps} search steps)\n{result.detail}")
        # Does the violation hang on Offline writes having taken no effect?
        again = check(from_records(records, offline_took_no_effect=False), budget=BUDGET)
        failures.append(
            f"with Offline writes of unknown outcome instead, the history is {again.outcome}"
        )
    elif result.outcome == "unknown":
        failures.append(
            f"linearizability UNKNOWN: the search gave up after {result.steps} of its "
            f"{result.budget} steps budget on {result.ops} ops "
            f"({sum(op.complete is None for op in ops)} adds of unknown outcome): "
            f"{result.detail}"
        )
    failures.extend(log_findings(ops, logs))
    return failures


def log_findings(ops: list[Op], logs: dict[str, list[list[int]]]) -> list[str]:
    """What the members' applied logs show: whether they agree, whether
    each write that returned its index is in the log there, and which reads
    missed a write that had returned before they started."""
    failures: list[str] = []
    by_index: dict[int, tuple[int, str]] = {}
    for name, log in logs.items():
        indices = [index for index, _ in log]
        if indices != list(range(1, len(log) + 1)):
            failures.append(f"{name} applied indices out of order or with gaps")
        for index, command in log:
            seen = by_index.setdefault(index, (command, name))
            if seen[0] != command:
                failures.append(
                    f"logs differ at index {index}: {seen[1]} applied {seen[0]}, "
                    f"{name} applied {command}"
                )
    if not by_index:
        return failures
    last = max(by_index)
    where = {command: index for index, (command, _) in by_index.items()}
    adds = [op for op in ops if op.kind == "add" and op.complete is not None]
    lost = []
    for op in adds:
        if op.index is None or op.index > last:
            continue
        if where.get(op.value) != op.index:
            holder = by_index.get(op.index, (None, ""))[0]
            at = where.get(op.value)
            lost.append(
                f"  {format_op(op)}: entry {op.index} holds {holder}; "
                + ("the command is nowhere in the log" if at is None else f"it is at {at}")
            )
    if lost:
        failures.append(
            f"{len(lost)} execute calls returned an index that does not hold their command:\n"
            + "\n".join(lost[:20])
        )
    # The state each read saw, by its total (the commands are random enough
    # that a total names one prefix of the log).
    totals: dict[int, int] = {0: 0}
    total = 0
    for index in range(1, last + 1):
        if index not in by_index:
            break
        total += by_index[index][0]
        totals[total] = index
    stale = []
    for read in (op for op in ops if op.kind == "read"):
        seen_index = totals.get(read.value)
        if seen_index is None:
            stale.append(f"  {format_op(read)}: the total is no prefix of the log")
            continue
        missed = [
            op
            for op in adds
            if op.complete is not None
            and op.complete < read.invoke
            and where.get(op.value, math.inf) > seen_index
        ]
        if missed:
            latest = max(missed, key=lambda op: op.complete or 0.0)
            stale.append(
                f"  {format_op(read)} reflects index {seen_index}, but "
                f"{len(missed)} write(s) had returned before it started, e.g. "
                f"{format_op(latest)} (in the log at {where.get(latest.value)})"
            )
    if stale:
        failures.append(
            f"{len(stale)} strong reads are stale by the applied log:\n" + "\n".join(stale[:20])
        )
    return failures


def summary(
    records: list[dict[str, Any]],
    ops: list[Op],
    result: CheckResult,
    took: float,
    recoveries: dict[str, float],
    runtime: float,
) -> str:
    def count(kind: str, error: str | None) -> int:
        return sum(1 for r in records if r["kind"] == kind and r["error"] == error)

    errors = sorted({r["error"] for r in records if r["error"] is not None})
    failed = ", ".join(
        f"{e}: {sum(1 for r in records if r['error'] == e and r['kind'] == k)} {k}"
        for e in errors
        for k in ("add", "read")
        if any(r["error"] == e and r["kind"] == k for r in records)
    )
    return (
        f"{len(records)} ops: {count('add', None)} writes and {count('read', None)} strong "
        f"reads succeeded; failed: {failed or 'none'}\n"
        f"checked {len(ops)} ops ({sum(op.complete is None for op in ops)} writes of unknown "
        f"outcome): {result.outcome} in {result.steps} steps, {took:.2f} s\n"
        "first successful write after: "
        + ", ".join(f"{what} {s:.1f} s" for what, s in recoveries.items())
        + f"\nruntime {runtime:.1f} s"
    )
