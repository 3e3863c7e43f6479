"""The ``mosaik`` command line (also ``python -m mosaik``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from .network import Network
from .streams import Consumer

DEMO_NETWORK = "mosaik-demo"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


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

        producer = first.streams.producer("demo/readings", codec="bytes", lagging="block")
        consumers = [n.streams.consumer("demo/readings", codec="bytes") for n in net[1:]]
        await asyncio.gather(*(c.when.subscribed(1) for c in consumers))
        await producer.when.subscribed(len(consumers))
        print(f"\n{_short(first)} produces 64-byte datums; {len(consumers)} consumers read them")

        stop = asyncio.Event()

        async def produce() -> None:
            payload = bytes(64)
            while not stop.is_set():
                await producer.send_many([payload] * 256)

        async def consume(consumer: Consumer) -> None:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(consumer.recv_batch(4096), 0.5)
                except asyncio.TimeoutError:
                    continue

        tasks = [asyncio.create_task(produce())]
        tasks += [asyncio.create_task(consume(c)) for c in consumers]
        deadline = time.monotonic() + seconds
        last = [c.stats.datums for c in consumers]
        while time.monotonic() < deadline:
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            now = [c.stats.datums for c in consumers]
            rates = [b - a for a, b in zip(last, now)]
            last = now
            print(
                f"  {sum(rates):9,d} datums/s delivered   "
                f"(per consumer: {', '.join(f'{r:,d}' for r in rates)})"
            )
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        print(f"  {producer.stats.datums:,d} datums sent, {sum(last):,d} delivered in all")
    finally:
        await asyncio.gather(*(node.close() for node in net))
    print("all nodes closed")


def _short(node: Network) -> str:
    return node.peer_id[:16]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mosaik", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="run a self-contained local network")
    demo_parser.add_argument("--nodes", type=int, default=4, help="how many nodes (default 4)")
    demo_parser.add_argument(
        "--seconds", type=float, default=5.0, help="how long to run traffic (default 5)"
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.nodes < 2:
            parser.error("--nodes: at least 2")
        if not 0 < args.seconds <= 3600:
            parser.error("--seconds: between 0 and 3600")
        try:
            asyncio.run(demo(args.nodes, args.seconds))
        except KeyboardInterrupt:
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
