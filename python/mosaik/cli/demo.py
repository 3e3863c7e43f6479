"""``demo``: a self-contained local network, the first thing a new user runs.

Nodes meet on loopback, form a group with a replicated counter, and one of
them streams datums to the others as fast as they take them, with a
progress line each second and a summary table at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from ..groups import ApplyContext, ConsensusConfig, Group, StateMachine
from ..network import Network
from ..streams import Consumer
from ._common import EXIT_OK, CliError, Parser, command
from ._latency import percentile_ms

DEMO_NETWORK = "mosaik-demo"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


class _Reader:
    """One consumer's counters: datums seen and latency samples (ns), bounded."""

    MAX_SAMPLES = 200_000

    def __init__(self, node: Network, consumer: Consumer) -> None:
        self.name = node.peer_id[:16]
        self.consumer = consumer
        self.datums = 0
        self.window: list[int] = []  # latencies since the last progress line
        self.samples: list[int] = []  # latencies for the summary

    def record(self, batch: list[bytes]) -> None:
        now = time.monotonic_ns()
        self.datums += len(batch)
        # The first and last datum of each batch: the batch's age range.
        for datum in (batch[0], batch[-1]):
            latency = now - int.from_bytes(datum[:8], "little")
            self.window.append(latency)
            if len(self.samples) < self.MAX_SAMPLES:
                self.samples.append(latency)


class _DemoCounter(StateMachine):
    """The demo's replicated counter: i64 commands added to a total."""

    signature = "mosaik-demo-counter"
    command_codec = "i64"

    def __init__(self) -> None:
        self.total = 0

    def apply(self, command: int, ctx: ApplyContext) -> None:
        self.total += command

    def query(self, query: object) -> int:
        return self.total


async def _form_group(net: list[Network]) -> list[Group]:
    """Every node joins one group with a counter machine and they elect a leader."""
    started = time.monotonic()
    # mosaik waits 3 s before a first election so members can bond; 1 s is
    # plenty on loopback.
    consensus = ConsensusConfig(bootstrap_delay=1.0)
    groups = [n.groups.join("demo-counter", _DemoCounter(), consensus=consensus) for n in net]
    leaders = await asyncio.wait_for(asyncio.gather(*(g.when.leader_elected() for g in groups)), 30)
    print(
        f"  group {groups[0].group_id[:16]}: {len(groups)} members elected "
        f"{leaders[0][:16]} after {_ms(time.monotonic() - started)}"
    )
    return groups


def _totals(groups: list[Group]) -> list[int]:
    return [g.machine.total if isinstance(g.machine, _DemoCounter) else -1 for g in groups]


async def demo(nodes: int, seconds: float) -> None:
    """Starts a local network: nodes find each other, one produces, the rest consume."""
    print(f"starting {nodes} nodes of network {DEMO_NETWORK!r} on 127.0.0.1 (local=True)")
    started = time.monotonic()
    first = await Network.create(DEMO_NETWORK, local=True, tags=("demo",))
    net = [first] + [
        await Network.create(DEMO_NETWORK, local=True, bootstrap=[first.address])
        for _ in range(nodes - 1)
    ]
    try:
        await asyncio.gather(*(n.discovery.wait_for_peers(nodes - 1, timeout=30) for n in net))
        print(f"  every node knows the {nodes - 1} others after {_ms(time.monotonic() - started)}")
        for node in net:
            print(f"  {node.peer_id[:16]}  {node.address[:48]}…")
        groups = await _form_group(net)

        producer = first.streams.producer("demo/readings", codec="bytes", lagging="block")
        readers = [_Reader(n, n.streams.consumer("demo/readings", codec="bytes")) for n in net[1:]]
        await asyncio.gather(*(r.consumer.when.subscribed(1) for r in readers))
        await producer.when.subscribed(len(readers))
        print(
            f"\n{_short(first)} sends 64-byte datums as fast as the slowest consumer takes them "
            f'(lagging="block"); {len(readers)} consumers read them.\n'
            "Latency is send-to-receive at full load, so it includes queueing.\n"
        )
        stop = asyncio.Event()

        async def produce() -> None:
            padding = bytes(56)
            while not stop.is_set():
                now = time.monotonic_ns().to_bytes(8, "little")
                await producer.send_many([now + padding] * 256)

        async def consume(reader: _Reader) -> None:
            while not stop.is_set():
                try:
                    reader.record(await asyncio.wait_for(reader.consumer.recv_batch(4096), 0.5))
                except asyncio.TimeoutError:
                    continue

        tasks = [asyncio.create_task(produce())]
        tasks += [asyncio.create_task(consume(r)) for r in readers]
        traffic_started = time.monotonic()
        deadline = traffic_started + seconds
        last = [0] * len(readers)
        elapsed = 0
        while time.monotonic() < deadline:
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            elapsed += 1
            now = [r.datums for r in readers]
            rates = [b - a for a, b in zip(last, now)]
            last = now
            per_consumer = "  ".join(
                f"{rate / 1000:6.1f}k/s p50 {percentile_ms(r.window, 0.5):5.1f} ms"
                for rate, r in zip(rates, readers)
            )
            for reader in readers:
                reader.window = []
            print(f"  [{elapsed:3d}s] {sum(rates):9,d} datums/s delivered | {per_consumer}")
            # Each second another member adds 1 to the replicated counter.
            writer = groups[elapsed % len(groups)]
            index = await asyncio.wait_for(writer.execute(1), 10)
            print(
                f"         counter +1 from {_short(net[elapsed % len(net)])} at log index "
                f"{index}; leader {(writer.leader or '?')[:16]}"
            )
        duration = time.monotonic() - traffic_started
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        _summary(readers, duration, producer.stats.datums)
        last_index = max(g.log_position[1] for g in groups)
        await asyncio.wait_for(asyncio.gather(*(g.when.committed(last_index) for g in groups)), 10)
        for _ in range(100):  # the machines apply what committed on the event loop
            if len(set(_totals(groups))) == 1:
                break
            await asyncio.sleep(0.01)
        print(f"\nreplicated counter on every member: {_totals(groups)}")
    finally:
        await asyncio.gather(*(node.close() for node in net))
    print("all nodes closed")


def _summary(readers: list[_Reader], duration: float, sent: int) -> None:
    print(f"\nsummary over {duration:.1f} s ({sent:,d} datums sent)\n")
    print("| consumer         |     datums | datums/s | MiB/s | p50 ms | p99 ms |")
    print("|------------------|-----------:|---------:|------:|-------:|-------:|")
    everyone: list[int] = []
    for reader in readers:
        everyone += reader.samples
        _row(reader.name, reader.datums, duration, reader.samples)
    _row("all consumers", sum(r.datums for r in readers), duration, everyone)


def _row(name: str, datums: int, duration: float, samples: list[int]) -> None:
    rate = datums / duration
    print(
        f"| {name:16s} | {datums:10,d} | {rate:8,.0f} | {rate * 64 / 2**20:5.1f} "
        f"| {percentile_ms(samples, 0.5):6.2f} | {percentile_ms(samples, 0.99):6.2f} |"
    )


def _short(node: Network) -> str:
    return node.peer_id[:16]


def register(commands: argparse._SubParsersAction[Parser]) -> None:
    parser = command(commands, "demo", run_demo, "run a self-contained local network")
    parser.add_argument("--nodes", type=int, default=4, help="how many nodes (default 4)")
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="how long to run traffic (default 5)"
    )


async def run_demo(args: argparse.Namespace) -> int:
    if args.nodes < 2:
        raise CliError("--nodes: at least 2")
    if not 0 < args.seconds <= 3600:
        raise CliError("--seconds: between 0 and 3600")
    await demo(args.nodes, args.seconds)
    return EXIT_OK
