"""One member of a benchmarked consensus group: a process driven by JSON lines.

``benches/groups.py`` starts three of these per run, ``python
benches/_group_worker.py ours`` (our package, ``local=True``) or ``python
benches/_group_worker.py pysyncobj`` (PySyncObj 0.3.17 on 127.0.0.1
ports), and sends one command object per line on stdin; each gets exactly
one answer line on stdout, ``{"ok": true, ...}`` or ``{"ok": false,
"error": ...}``. The native side answers the same ``bench_group_*``
commands in the reference peer (``tests/interop/src/group_bench.rs``), so
all three sides of a row are driven by the same code.

The machine is the reference peer's ``Counter`` (``i64`` commands added to
a total) on every side: for us a Python :class:`mosaik.StateMachine` whose
``apply`` runs for every committed command on every member, for PySyncObj
a ``@replicated`` method.

Commands (times on the shared ``CLOCK_MONOTONIC`` clock are ``*_ns``):

- ``start {"network", "relay"?, "bootstrap"?}`` → ``{"address",
  "peer_id"}`` (ours); ``start {"port", "partners"}`` → ``{"peer_id"}``
  (PySyncObj: the member listens on ``127.0.0.1:port``).
- ``bench_group_join {"key", "machine"?}`` → ``{"group_id"}``: the group of
  ``machine`` (``counter``, the default, or ``noop``: mosaik's NoOp, no
  Python machine) with default consensus settings (PySyncObj: nothing to
  do, its counter is the group).
- ``bench_group_ready {"group_id", "bonds", "leader"?, "timeout_ms"}`` →
  ``{"leader", "is_leader", "bonds", "elapsed_ms"}``: once ``bonds`` peers
  are bonded and (unless ``leader`` is false) a leader is known and this
  member is online.
- ``bench_group_latency {"group_id", "count", "warmup", "seconds"?}`` →
  ``{"latencies_ns"}``: ``warmup`` then ``count`` sequential
  ``execute(1)`` calls from this member, each timed; fewer (but at least
  20) once ``seconds`` have passed since the warm-up.
- ``bench_group_throughput {"group_id", "seconds", "warmup_s", "batch",
  "concurrency"}`` → ``{"commands", "window_ns"}``: ``concurrency`` loops of
  ``execute_many`` of ``batch`` commands (``batch: 1`` is ``execute``);
  commands whose call returned inside the window. PySyncObj: asynchronous
  (callback) calls, at most ``concurrency * batch`` in flight.
- ``bench_group_probe {"group_id", "old_leader", "every_ms", "seconds"}``
  → ``{"probes": [[start_ns, end_ns, ok], ...]}``: starts an
  ``execute(1)`` every ``every_ms``, each bounded by ``seconds``, until one
  that started after the leader changed away from ``old_leader`` succeeds
  (or ``seconds`` pass). Unfinished probes have ``end_ns`` null; ours also
  answers the member's ``status`` at the end (its repr).
- ``bench_group_fill {"group_id", "entries", "batch", "concurrency"}`` →
  ``{"committed", "elapsed_ms"}``: commits ``entries`` commands.
- ``bench_group_wait_committed {"group_id", "index", "timeout_ms"}`` →
  ``{"committed"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import traceback
from collections.abc import Awaitable
from typing import Any, Callable

Json = dict[str, Any]

DEFAULT_TIMEOUT_S = 30.0
#: How often waits on status look again (besides the status watches).
POLL_S = 0.01
#: Latency samples taken whatever the time budget.
MIN_SAMPLES = 20
#: Bound of one probe and of probes in flight.
MAX_PROBES = 2000
#: Settle after the probe that ends a failover run, for stragglers to report.
PROBE_TAIL_S = 0.05
COUNTER_TYPE_NAME = "mosaik_interop_peer::groups::Counter"


def timeout_of(cmd: Json) -> float:
    return float(cmd.get("timeout_ms", DEFAULT_TIMEOUT_S * 1000)) / 1000


class Budget:
    """``count`` samples, or fewer once ``seconds`` have passed (at least
    ``MIN_SAMPLES``): a slow side still answers in bounded time."""

    def __init__(self, cmd: Json) -> None:
        self.count = int(cmd["count"])
        self.seconds = float(cmd.get("seconds", 1e9))
        self.started = time.monotonic()

    def more(self, samples: list[int]) -> bool:
        if len(samples) >= self.count:
            return False
        return len(samples) < MIN_SAMPLES or time.monotonic() - self.started < self.seconds


class Window:
    """Counts completions, and snapshots the count at a window's edges."""

    def __init__(self, warmup_s: float, seconds: float) -> None:
        self.done = 0
        now = time.monotonic_ns()
        self.start_ns = now + int(warmup_s * 1e9)
        self.end_ns = self.start_ns + int(seconds * 1e9)
        self.at_start: int | None = None
        self.at_end: int | None = None
        self.start_seen_ns = 0
        self.end_seen_ns = 0

    def add(self, count: int) -> None:
        """Called once per completed call; the clock is read here, so the
        window's edges fall on completions (within one call's time)."""
        now = time.monotonic_ns()
        if self.at_start is None and now >= self.start_ns:
            self.at_start, self.start_seen_ns = self.done, now
        self.done += count
        if self.at_end is None and now >= self.end_ns:
            self.at_end, self.end_seen_ns = self.done, now

    @property
    def finished(self) -> bool:
        return self.at_end is not None

    def result(self) -> Json:
        if self.at_start is None or self.at_end is None:
            raise RuntimeError(f"the window did not close ({self.done} commands in all)")
        return {
            "commands": self.at_end - self.at_start,
            "window_ns": self.end_seen_ns - self.start_seen_ns,
        }


# --------------------------------------------------------------------------
# Ours


def ours_main() -> None:
    import mosaik

    class Counter(mosaik.StateMachine):
        """The reference peer's ``Counter``."""

        signature = "counter-v1"
        type_name = COUNTER_TYPE_NAME
        command_codec = "i64"
        query_codec = "()"
        result_codec = "i64"

        def __init__(self) -> None:
            self.total = 0

        def apply(self, command: int, ctx: mosaik.ApplyContext) -> None:
            self.total += command

        def query(self, query: None) -> int:
            return self.total

    class Ours:
        def __init__(self) -> None:
            self.node: mosaik.Network | None = None
            self.groups: dict[str, mosaik.Group] = {}
            # The command each group's calls send: 1 (counter) or None (NoOp).
            self.commands_of: dict[str, int | None] = {}
            self.commands: dict[str, Callable[[Json], Awaitable[Json]]] = {
                "start": self.start,
                "bench_group_join": self.join,
                "bench_group_ready": self.ready,
                "bench_group_latency": self.latency,
                "bench_group_throughput": self.throughput,
                "bench_group_probe": self.probe,
                "bench_group_fill": self.fill,
                "bench_group_wait_committed": self.wait_committed,
            }

        def group(self, cmd: Json) -> mosaik.Group:
            return self.groups[str(cmd["group_id"])]

        def one(self, cmd: Json) -> int | None:
            return self.commands_of[str(cmd["group_id"])]

        async def start(self, cmd: Json) -> Json:
            self.node = await mosaik.Network.create(
                cmd["network"],
                local=True,
                relay=cmd.get("relay") or "default",
                bootstrap=list(cmd.get("bootstrap", ())),
            )
            return {"address": self.node.address, "peer_id": self.node.peer_id}

        async def join(self, cmd: Json) -> Json:
            if self.node is None:
                raise RuntimeError("no node running; send `start` first")
            noop = cmd.get("machine") == "noop"
            group = self.node.groups.join(str(cmd["key"]), None if noop else Counter())
            self.groups[group.group_id] = group
            self.commands_of[group.group_id] = None if noop else 1
            return {"group_id": group.group_id}

        async def ready(self, cmd: Json) -> Json:
            group = self.group(cmd)
            bonds = int(cmd.get("bonds", 2))
            with_leader = bool(cmd.get("leader", True))
            started = time.monotonic()

            async def settled() -> Any:
                while True:
                    status = group.status
                    led = not with_leader or (status.leader is not None and status.is_online)
                    if len(status.bonds) >= bonds and led:
                        return status
                    await asyncio.sleep(POLL_S)

            status = await asyncio.wait_for(settled(), timeout_of(cmd))
            return {
                "leader": status.leader,
                "is_leader": status.is_leader,
                "bonds": len(status.bonds),
                "elapsed_ms": int((time.monotonic() - started) * 1000),
            }

        async def latency(self, cmd: Json) -> Json:
            group, one = self.group(cmd), self.one(cmd)
            for _ in range(int(cmd.get("warmup", 0))):
                await group.execute(one)
            budget = Budget(cmd)
            samples: list[int] = []
            while budget.more(samples):
                started = time.monotonic_ns()
                await group.execute(one)
                samples.append(time.monotonic_ns() - started)
            return {"latencies_ns": samples}

        async def throughput(self, cmd: Json) -> Json:
            group, one = self.group(cmd), self.one(cmd)
            batch = int(cmd["batch"])
            window = Window(float(cmd["warmup_s"]), float(cmd["seconds"]))
            commands = [one] * batch

            async def loop() -> None:
                while not window.finished:
                    if batch == 1:
                        await group.execute(one)
                    else:
                        await group.execute_many(commands)
                    window.add(batch)

            await asyncio.wait_for(
                asyncio.gather(*(loop() for _ in range(int(cmd["concurrency"])))),
                float(cmd["warmup_s"]) + float(cmd["seconds"]) + timeout_of(cmd),
            )
            return window.result()

        async def probe(self, cmd: Json) -> Json:
            group, command = self.group(cmd), self.one(cmd)
            old = cmd.get("old_leader")
            every = float(cmd.get("every_ms", 10)) / 1000
            bound = float(cmd.get("seconds", 10))
            probes: list[list[Any]] = []
            changed_ns: list[int] = []  # when this member saw another leader
            done = asyncio.Event()

            async def one(record: list[Any]) -> None:
                try:
                    await asyncio.wait_for(group.execute(command), bound)
                except (mosaik.MosaikError, asyncio.TimeoutError):
                    record[1], record[2] = time.monotonic_ns(), False
                    return
                record[1], record[2] = time.monotonic_ns(), True
                if changed_ns and record[0] >= changed_ns[0]:
                    done.set()

            tasks = []
            deadline = time.monotonic() + bound
            while time.monotonic() < deadline and not done.is_set() and len(probes) < MAX_PROBES:
                leader = group.leader
                if not changed_ns and leader is not None and leader != old:
                    changed_ns.append(time.monotonic_ns())
                record: list[Any] = [time.monotonic_ns(), None, None]
                probes.append(record)
                tasks.append(asyncio.ensure_future(one(record)))
                try:
                    await asyncio.wait_for(done.wait(), every)
                except asyncio.TimeoutError:
                    pass
            await asyncio.sleep(PROBE_TAIL_S)
            for task in tasks:
                task.cancel()
            status = group.status
            return {
                "probes": probes,
                "changed_ns": changed_ns[0] if changed_ns else None,
                "status": repr(status),
            }

        async def fill(self, cmd: Json) -> Json:
            group, one = self.group(cmd), self.one(cmd)
            entries = int(cmd["entries"])
            batch = int(cmd.get("batch", 1000))
            remaining = [entries]
            started = time.monotonic()

            async def loop() -> None:
                while remaining[0] > 0:
                    size = min(batch, remaining[0])
                    remaining[0] -= size
                    await group.execute_many([one] * size)

            await asyncio.wait_for(
                asyncio.gather(*(loop() for _ in range(int(cmd.get("concurrency", 4))))),
                timeout_of(cmd),
            )
            return {
                "committed": group.committed,
                "elapsed_ms": int((time.monotonic() - started) * 1000),
            }

        async def wait_committed(self, cmd: Json) -> Json:
            group = self.group(cmd)
            committed = await asyncio.wait_for(
                group.when.committed(int(cmd["index"])), timeout_of(cmd)
            )
            return {"committed": committed}

        async def handle(self, cmd: Json) -> Json:
            handler = self.commands.get(cmd.get("cmd", ""))
            if handler is None:
                return {"ok": False, "error": f"unknown command {cmd.get('cmd')!r}"}
            try:
                return {"ok": True, **await handler(cmd)}
            except Exception as error:  # every failure becomes an answer
                trace = traceback.format_exc(limit=4)
                return {"ok": False, "error": f"{type(error).__name__}: {error}\n{trace}"}

    async def serve() -> None:
        member = Ours()
        print(json.dumps({"event": "ready"}), flush=True)
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line or json.loads(line).get("cmd") == "shutdown":
                break
            print(json.dumps(await member.handle(json.loads(line))), flush=True)
        # The driver kills this process right after; no graceful close needed.

    asyncio.run(serve())


# --------------------------------------------------------------------------
# PySyncObj


def pysyncobj_main() -> None:
    from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated

    class Counter(SyncObj):  # type: ignore[misc] -- pysyncobj is untyped
        def __init__(self, me: str, partners: list[str]) -> None:
            # Defaults, but no journal or dump files, no log-compaction forks.
            super().__init__(me, partners, SyncObjConf(dynamicMembershipChange=False))
            self.total = 0

        @replicated  # type: ignore[misc]
        def add(self, value: int) -> int:
            self.total += value
            return self.total

    class Pso:
        def __init__(self) -> None:
            self.counter: Counter | None = None
            self.commands: dict[str, Callable[[Json], Json]] = {
                "start": self.start,
                "bench_group_join": lambda cmd: {"group_id": "pysyncobj"},
                "bench_group_ready": self.ready,
                "bench_group_latency": self.latency,
                "bench_group_throughput": self.throughput,
                "bench_group_probe": self.probe,
                "bench_group_fill": self.fill,
                "bench_group_wait_committed": self.wait_committed,
            }

        def started(self) -> Counter:
            if self.counter is None:
                raise RuntimeError("no member running; send `start` first")
            return self.counter

        def start(self, cmd: Json) -> Json:
            me = f"127.0.0.1:{int(cmd['port'])}"
            partners = [f"127.0.0.1:{int(p)}" for p in cmd["partners"]]
            self.counter = Counter(me, partners)
            return {"peer_id": me}

        def ready(self, cmd: Json) -> Json:
            counter = self.started()
            bonds = int(cmd.get("bonds", 2))
            started = time.monotonic()
            deadline = started + timeout_of(cmd)
            while time.monotonic() < deadline:
                status = counter.getStatus()
                connected = sum(
                    1 for k, v in status.items() if k.startswith("partner_node_status") and v == 2
                )
                if connected >= bonds and status["leader"] is not None and counter.isReady():
                    leader = str(status["leader"])
                    return {
                        "leader": leader,
                        "is_leader": leader == str(status["self"]),
                        "bonds": connected,
                        "elapsed_ms": int((time.monotonic() - started) * 1000),
                    }
                time.sleep(POLL_S)
            raise TimeoutError("no leader, or partners not connected")

        def latency(self, cmd: Json) -> Json:
            counter = self.started()
            wait = timeout_of(cmd)
            for _ in range(int(cmd.get("warmup", 0))):
                counter.add(1, sync=True, timeout=wait)
            budget = Budget(cmd)
            samples: list[int] = []
            while budget.more(samples):
                started = time.monotonic_ns()
                counter.add(1, sync=True, timeout=wait)
                samples.append(time.monotonic_ns() - started)
            return {"latencies_ns": samples}

        def throughput(self, cmd: Json) -> Json:
            counter = self.started()
            window = Window(float(cmd["warmup_s"]), float(cmd["seconds"]))
            inflight = threading.Semaphore(int(cmd["concurrency"]) * int(cmd["batch"]))
            failures: list[Any] = []
            lock = threading.Lock()

            def done(result: Any, error: Any) -> None:
                inflight.release()
                if error != FAIL_REASON.SUCCESS:
                    failures.append(error)
                    return
                with lock:
                    window.add(1)

            deadline = time.monotonic() + float(cmd["warmup_s"]) + float(cmd["seconds"])
            deadline += timeout_of(cmd)
            while not window.finished and not failures and time.monotonic() < deadline:
                if inflight.acquire(timeout=0.1):
                    counter.add(1, callback=done)
            if failures:
                raise RuntimeError(f"a call failed: reason {failures[0]}")
            return window.result()

        def probe(self, cmd: Json) -> Json:
            counter = self.started()
            old = cmd.get("old_leader")
            every = float(cmd.get("every_ms", 10)) / 1000
            bound = float(cmd.get("seconds", 10))
            probes: list[list[Any]] = []
            changed_ns: list[int] = []
            finished = threading.Event()

            def callback(record: list[Any]) -> Callable[[Any, Any], None]:
                def done(result: Any, error: Any) -> None:
                    record[1], record[2] = time.monotonic_ns(), error == FAIL_REASON.SUCCESS
                    if record[2] and changed_ns and record[0] >= changed_ns[0]:
                        finished.set()

                return done

            deadline = time.monotonic() + bound
            while time.monotonic() < deadline and not finished.is_set():
                if len(probes) >= MAX_PROBES:
                    break
                leader = counter._getLeader()
                if not changed_ns and leader is not None and str(leader) != old:
                    changed_ns.append(time.monotonic_ns())
                record: list[Any] = [time.monotonic_ns(), None, None]
                probes.append(record)
                counter.add(1, callback=callback(record))
                finished.wait(every)
            time.sleep(PROBE_TAIL_S)
            snapshot = [list(p) for p in probes]
            return {"probes": snapshot, "changed_ns": changed_ns[0] if changed_ns else None}

        def fill(self, cmd: Json) -> Json:
            counter = self.started()
            entries = int(cmd["entries"])
            inflight = threading.Semaphore(int(cmd.get("batch", 1000)))
            left = threading.Semaphore(0)
            started = time.monotonic()

            def done(result: Any, error: Any) -> None:
                inflight.release()
                left.release()

            for _ in range(entries):
                inflight.acquire()
                counter.add(1, callback=done)
            for _ in range(entries):
                left.acquire()
            return {
                "committed": counter.getStatus()["commit_idx"],
                "elapsed_ms": int((time.monotonic() - started) * 1000),
            }

        def wait_committed(self, cmd: Json) -> Json:
            counter = self.started()
            deadline = time.monotonic() + timeout_of(cmd)
            while time.monotonic() < deadline:
                committed = int(counter.getStatus()["commit_idx"])
                if committed >= int(cmd["index"]):
                    return {"committed": committed}
                time.sleep(POLL_S)
            raise TimeoutError("not committed in time")

        def handle(self, cmd: Json) -> Json:
            handler = self.commands.get(cmd.get("cmd", ""))
            if handler is None:
                return {"ok": False, "error": f"unknown command {cmd.get('cmd')!r}"}
            try:
                return {"ok": True, **handler(cmd)}
            except Exception as error:  # every failure becomes an answer
                trace = traceback.format_exc(limit=4)
                return {"ok": False, "error": f"{type(error).__name__}: {error}\n{trace}"}

    member = Pso()
    print(json.dumps({"event": "ready"}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        if cmd.get("cmd") == "shutdown":
            break
        print(json.dumps(member.handle(cmd)), flush=True)


if __name__ == "__main__":
    side = sys.argv[1] if len(sys.argv) > 1 else "ours"
    if side == "ours":
        ours_main()
    elif side == "pysyncobj":
        pysyncobj_main()
    else:
        sys.exit(f"usage: {sys.argv[0]} ours|pysyncobj")
