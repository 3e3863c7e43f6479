"""The ``mosaik`` command line (also ``python -m mosaik``)."""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Sequence

from .network import Network

DEMO_NETWORK = "mosaik-demo"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


async def demo(nodes: int, seconds: float) -> None:
    """Starts a local network and shows its nodes reaching each other."""
    print(f"starting {nodes} nodes of network {DEMO_NETWORK!r} on 127.0.0.1 (local=True)")
    started = time.monotonic()
    first = await Network.create(DEMO_NETWORK, local=True, tags=("demo",))
    net = [first] + [
        await Network.create(DEMO_NETWORK, local=True, bootstrap=[first.address])
        for _ in range(nodes - 1)
    ]
    try:
        print(f"  up in {_ms(time.monotonic() - started)}")
        for node in net:
            print(f"  {node.peer_id[:16]}  {node.address[:48]}…")

        print("\nevery node pings every other node (mosaik's ping: a fresh signed entry):")
        for node in net:
            replies = await asyncio.gather(
                *(node.discovery.ping(other.address) for other in net if other is not node)
            )
            assert all(r.network_id == node.network_id for r in replies)
            print(f"  {node.peer_id[:16]} reached {len(replies)} peers, signatures verified")

        print(f"\nping traffic for {seconds:g} s:")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            window_end = min(deadline, time.monotonic() + 1.0)
            rtts: list[float] = []
            while time.monotonic() < window_end:
                a, b = random.sample(net, 2)
                t0 = time.perf_counter()
                await a.discovery.ping(b.address)
                rtts.append(time.perf_counter() - t0)
            print(
                f"  {len(rtts):5d} pings/s   median round trip {_ms(statistics.median(rtts))}"
                f"   (a new QUIC connection each)"
            )
    finally:
        await asyncio.gather(*(node.close() for node in net))
    print("all nodes closed")


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
