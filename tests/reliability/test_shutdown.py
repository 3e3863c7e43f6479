"""Shutdown, as a user meets it: interpreter exit with live nodes, Ctrl-C
during ``recv``/``send``, ``close()`` racing sends, and ``async with`` left by
an exception.

Each scenario runs ``MOSAIK_SHUTDOWN_RUNS`` times (100 by default), each run
in a fresh interpreter (``shutdown_child.py``) on loopback, several at once.
Every run must exit within 5 s of being spawned, with the expected status,
and print nothing on stderr but what the scenario expects: no traceback from
a background thread, no panic, no "Exception ignored", no fatal error.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

RUNS = int(os.environ.get("MOSAIK_SHUTDOWN_RUNS", "100"))
#: Runs at once: enough to finish 100 runs of a scenario in well under a
#: minute on 2 cores (a run mostly waits), few enough that CPU contention
#: does not eat the per-run budget. On a machine busy with other work, fewer
#: (MOSAIK_SHUTDOWN_PARALLEL) keep the budget about mosaik, not the scheduler.
PARALLEL = int(os.environ.get("MOSAIK_SHUTDOWN_PARALLEL", "6"))
#: From spawn to exit, including interpreter start and the scenario itself.
RUN_BUDGET = 5.0
#: A run still alive this long after spawn has hung: its threads' stacks are
#: dumped (SIGUSR1, see shutdown_child.py) and it is killed.
HANG_AFTER = 15.0
#: Once this many runs have failed, the remaining runs are not started: the
#: verdict is clear and a suite of hangs stays bounded in time.
STOP_AFTER_FAILURES = 3
#: Ctrl-C is sent this long after the child prints "waiting", the line right
#: before the await it interrupts. No event says "the await has started", so
#: a short grace lets the coroutine reach it (it is microseconds away).
SIGINT_GRACE = 0.05

CHILD = Path(__file__).with_name("shutdown_child.py")
CRASH_MARKERS = (
    "Traceback",
    "panicked",
    "Exception ignored",
    "Fatal Python error",
    "Segmentation fault",
    "Error in atexit",
)


@dataclass(frozen=True)
class Scenario:
    name: str
    returncode: int
    #: A line the child must print on stdout.
    stdout_line: str
    #: Send SIGINT once the child prints "waiting".
    interrupt: bool = False
    #: The one exception a user must see (its traceback is then the only stderr).
    exception: str | None = None
    #: Runs of a scenario that fails on every run when broken.
    runs: int = RUNS


SCENARIOS = [
    Scenario("exit_live", 0, "ready"),
    Scenario("exit_live_loop_thread", 0, "ready"),
    Scenario("sigint_recv", 0, "interrupted", interrupt=True),
    Scenario("sigint_send", 0, "interrupted", interrupt=True),
    Scenario("close_race", 0, "ended"),
    Scenario(
        "aexit_exception", 1, "ready", exception="RuntimeError: boom from the async with body"
    ),
    # Deterministic (see WideWindowLoop): a few runs suffice.
    Scenario("result_after_loop_closed", 0, "exited", runs=min(RUNS, 10)),
]


@dataclass
class Run:
    scenario: str
    seed: int
    network: str
    returncode: int | None
    wall: float
    stdout: list[str]
    stderr: str
    hung: bool
    #: Seconds from the child's first line ("ready", "waiting") to exit, or
    #: from SIGINT to exit when one was sent: the shutdown part of ``wall``.
    exiting: float | None

    def reproduce(self) -> str:
        return f"python {CHILD} {self.scenario} {self.network} {self.seed}"

    def describe(self) -> str:
        exiting = "" if self.exiting is None else f" ({self.exiting:.2f}s of it exiting)"
        return (
            f"seed {self.seed}: exit {self.returncode} after {self.wall:.2f}s{exiting}"
            f"{' (HUNG, killed)' if self.hung else ''}\n"
            f"  reproduce: {self.reproduce()}\n"
            f"  stdout: {self.stdout}\n"
            f"  stderr:\n{self.stderr}"
        )


def problems(scenario: Scenario, run: Run) -> list[str]:
    """What a user would notice going wrong in this run."""
    found = []
    if run.hung:
        found.append(f"hung: still running after {HANG_AFTER}s")
    elif run.wall >= RUN_BUDGET:
        found.append(f"took {run.wall:.2f}s (budget {RUN_BUDGET}s)")
    if run.returncode != scenario.returncode:
        found.append(f"exit status {run.returncode}, expected {scenario.returncode}")
    if not any(line.startswith(scenario.stdout_line) for line in run.stdout):
        found.append(f"never printed {scenario.stdout_line!r}")
    if scenario.exception is None:
        if run.stderr:
            markers = [m for m in CRASH_MARKERS if m in run.stderr]
            found.append(f"stderr not empty (contains {markers})")
    else:
        # Exactly one traceback, for the body's exception, and nothing after it.
        if not (
            run.stderr.startswith("Traceback (most recent call last):")
            and run.stderr.count("Traceback") == 1
            and run.stderr.rstrip("\n").endswith("\n" + scenario.exception)
        ):
            found.append(f"stderr is not just the traceback of {scenario.exception!r}")
        other = [m for m in CRASH_MARKERS[1:] if m in run.stderr]
        if other:
            found.append(f"stderr contains {other}")
    return found


async def run_once(scenario: Scenario, seed: int) -> Run:
    network = f"shutdown-{scenario.name}-{uuid.uuid4().hex[:12]}"
    env = dict(os.environ)
    env.pop("MOSAIK_LOG", None)  # stderr as a user sees it by default
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        scenario.name,
        network,
        str(seed),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    stdout: list[str] = []
    #: When the first line arrived, then when SIGINT went out.
    marks: list[float] = []
    signalled = False

    async def follow(stream: asyncio.StreamReader) -> None:
        nonlocal signalled
        async for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            stdout.append(line)
            if not marks:
                marks.append(time.monotonic())
            if scenario.interrupt and line == "waiting" and not signalled:
                signalled = True
                await asyncio.sleep(SIGINT_GRACE)
                if process.returncode is None:
                    marks[:] = [time.monotonic()]
                    process.send_signal(signal.SIGINT)

    reading = asyncio.ensure_future(follow(process.stdout))
    stderr_reading = asyncio.ensure_future(process.stderr.read())
    hung = False
    try:
        await asyncio.wait_for(process.wait(), HANG_AFTER)
    except asyncio.TimeoutError:
        hung = True
        process.send_signal(signal.SIGUSR1)  # every thread's stack to stderr
        await asyncio.sleep(1)
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), 5)
    ended = time.monotonic()
    await asyncio.wait_for(reading, 5)
    stderr = (await asyncio.wait_for(stderr_reading, 5)).decode(errors="replace")
    return Run(
        scenario=scenario.name,
        seed=seed,
        network=network,
        returncode=process.returncode,
        wall=ended - started,
        stdout=stdout,
        stderr=stderr,
        hung=hung,
        exiting=ended - marks[0] if marks else None,
    )


# 100 runs take 20-40 s; more runs (MOSAIK_SHUTDOWN_RUNS) get more time.
@pytest.mark.timeout(max(120, RUNS))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_shutdown_is_prompt_and_clean(scenario: Scenario) -> None:
    slots = asyncio.Semaphore(PARALLEL)
    failures: list[tuple[Run, list[str]]] = []
    runs: list[Run] = []

    async def one(seed: int) -> None:
        async with slots:
            if len(failures) >= STOP_AFTER_FAILURES:
                return
            run = await run_once(scenario, seed)
        runs.append(run)
        found = problems(scenario, run)
        if found:
            failures.append((run, found))

    began = time.monotonic()
    await asyncio.gather(*(one(seed) for seed in range(scenario.runs)))
    elapsed = time.monotonic() - began

    slowest = max(runs, key=lambda r: r.wall)
    exits = [r.exiting for r in runs if r.exiting is not None]
    summary = (
        f"{scenario.name}: {len(runs)} runs in {elapsed:.1f}s; slowest spawn to exit "
        f"{slowest.wall:.2f}s (seed {slowest.seed}), slowest "
        f"{'SIGINT' if scenario.interrupt else 'first line'} to exit {max(exits, default=0):.2f}s"
    )
    print(summary)
    if failures:
        details = "\n\n".join(
            f"{'; '.join(found)}\n{run.describe()}" for run, found in failures[:STOP_AFTER_FAILURES]
        )
        pytest.fail(
            f"{summary}\n{len(failures)} of {len(runs)} runs failed\n\n{details}\n\n"
            f"slowest run: {slowest.describe()}",
            pytrace=False,
        )
    assert len(runs) == scenario.runs
