"""One member of the linearizability test's group, as a child process: a
node bound to its own loopback address, joined to a counter group, and
clients that run execute and strong query against it.

    python group_member.py NAME BIND NETWORK BOOTSTRAP MEMBERS SEED

BOOTSTRAP is a peer address, or "-" for the first member; NAME is m0,
m1, ...; the group's quorum is a majority of MEMBERS. Everything goes
to stdout as JSON lines (``time.monotonic()`` times, which every process on
the machine shares):

    {"ev": "hello", "peer": ..., "address": ..., "pid": ...}   node up
    {"ev": "status", "t", "term", "role", "leader", "online"}   on each change
    {"ev": "ready"}                    all members known, and a leader
    {"ev": "invoke", "id", "kind", "value", "t"}                before each call
    {"ev": "op", "id", "client", "kind", "value", "invoke", "complete",
     "result", "error"}                                          after it
    {"ev": "done"}                     the clients stopped
    {"ev": "log", "applied": [[index, command], ...], "status": {...}}

Stdin drives it, one word a line: "go" starts the clients, "stop" ends them
(after their calls in flight), "dump" prints the applied log; end of input
closes the group and the node.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import sys
import time
from typing import TYPE_CHECKING, Any

import mosaik

if TYPE_CHECKING:
    from mosaik._mosaik import GroupStatus

KEY = "linearizability"
CLIENTS = 2
#: The most ops one client runs, and the pause between its calls' starts.
OPS_PER_CLIENT = 250
PACE = 0.15
#: A call that takes longer is abandoned (its outcome is then unknown).
OP_TIMEOUT = 10.0


class Counter(mosaik.StateMachine):
    signature = "lin-counter"
    command_codec = "i64"
    query_codec = "()"
    result_codec = "i64"

    def __init__(self) -> None:
        self.total = 0
        self.applied: list[tuple[int, int]] = []

    def apply(self, command: int, ctx: mosaik.ApplyContext) -> None:
        self.total += command
        self.applied.append((ctx.index, command))

    def query(self, query: None) -> int:
        return self.total


def emit(**fields: Any) -> None:
    print(json.dumps(fields, separators=(",", ":")), flush=True)


def status_fields(status: GroupStatus) -> dict[str, Any]:
    return {
        "term": status.term,
        "role": status.role,
        "leader": status.leader,
        "online": status.is_online,
        "committed": status.committed,
        "last": status.log_position[1],
        "bonds": len(status.bonds),
    }


async def report_status(group: mosaik.Group) -> None:
    """A status line whenever the term, the role or the leader changes."""
    native = group._native  # status_changed: the event behind group.when
    status = native.status()
    shown = None
    while True:
        key = (status.term, status.role, status.leader, status.is_online)
        if key != shown:
            emit(ev="status", t=time.monotonic(), **status_fields(status))
            shown = key
        try:
            status = await native.status_changed(status)
        except mosaik.Closed:
            return


async def client(
    group: mosaik.Group,
    name: str,
    rng: random.Random,
    values: set[int],
    tag: int,
    stop: asyncio.Event,
) -> None:
    started = time.monotonic()
    for n in range(OPS_PER_CLIENT):
        if stop.is_set():
            return
        op_id = f"{name}-{n}"
        if rng.random() < 0.5:
            kind = "add"
            # Unique in the whole run: random high bits, the member in the low ones.
            while True:
                value = rng.randrange(1, 1 << 26) * 16 + tag
                if value not in values:
                    values.add(value)
                    break
            call = group.execute(value)
        else:
            kind, value = "read", None
            call = group.query(consistency="strong")
        invoke = time.monotonic()
        emit(ev="invoke", id=op_id, kind=kind, value=value, t=invoke)
        result: int | None = None
        error: str | None = None
        try:
            result = await asyncio.wait_for(call, OP_TIMEOUT)
        except asyncio.TimeoutError:
            error = "TimeoutError"
        except mosaik.MosaikError as e:
            error = type(e).__name__
        complete = time.monotonic()
        emit(
            ev="op",
            id=op_id,
            client=name,
            kind=kind,
            value=value,
            invoke=invoke,
            complete=complete,
            result=result,
            error=error,
        )
        # Paced, so a bounded number of ops spans the nemesis' schedule.
        next_start = started + (n + 1) * PACE
        delay = next_start - time.monotonic()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except asyncio.TimeoutError:
                pass


async def read_commands() -> tuple[asyncio.Queue[str | None], asyncio.Task[None]]:
    """Stdin lines, as a queue (None at end of input), and the task that
    fills it (hold on to it: a task nothing refers to may be collected)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    async def pump() -> None:
        while True:
            line = await reader.readline()
            if not line:
                await queue.put(None)
                return
            await queue.put(line.decode().strip())

    return queue, loop.create_task(pump())


async def run(name: str, bind: str, network: str, bootstrap: str, members: int, seed: int) -> None:
    commands, reading = await read_commands()
    consensus = mosaik.ConsensusConfig(
        quorum=members // 2 + 1,
        bootstrap_delay=1.0,
        election_timeout=1.0,
        election_timeout_jitter=0.5,
    )
    async with mosaik.Network.create(
        network,
        local=True,
        bind=f"{bind}:0",
        bootstrap=[] if bootstrap == "-" else [bootstrap],
    ) as net:
        emit(ev="hello", peer=net.peer_id, address=net.address, pid=os.getpid())
        await net.discovery.wait_for_peers(members - 1, timeout=30)
        machine = Counter()
        group = net.groups.join(KEY, machine, consensus=consensus)
        reporter = asyncio.create_task(report_status(group))
        await asyncio.wait_for(group.when.leader_elected(), 30)
        emit(ev="ready")
        stop = asyncio.Event()
        clients: list[asyncio.Task[None]] = []
        values: set[int] = set()
        tag = int(name.lstrip("m"))
        while True:
            command = await commands.get()
            if command is None:
                break
            if command == "go":
                rng = random.Random(seed)
                clients = [
                    asyncio.create_task(
                        client(group, f"{name}c{c}", random.Random(rng.random()), values, tag, stop)
                    )
                    for c in range(CLIENTS)
                ]
            elif command == "stop":
                stop.set()
                await asyncio.gather(*clients)
                emit(ev="done")
            elif command == "dump":
                emit(ev="log", applied=machine.applied, status=status_fields(group.status))
        stop.set()
        await asyncio.gather(*clients)
        await group.close()
        for task in (reporter, reading):
            task.cancel()
        await asyncio.gather(reporter, reading, return_exceptions=True)


class _Monotonic(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # The same clock as the op records (a log line is stamped when formatted).
        return f"{time.monotonic():.4f} {record.levelname} {record.name}: {record.getMessage()}"


def main() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Monotonic())
    logging.basicConfig(handlers=[handler])  # mosaik's level: WARNING, or MOSAIK_LOG
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("bind")
    parser.add_argument("network")
    parser.add_argument("bootstrap")
    parser.add_argument("members", type=int)
    parser.add_argument("seed", type=int)
    args = parser.parse_args()
    asyncio.run(run(args.name, args.bind, args.network, args.bootstrap, args.members, args.seed))


if __name__ == "__main__":
    main()
