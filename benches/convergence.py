"""Discovery convergence: N local nodes, each given only the first node's
address; time until every node knows all N-1 others.

    python benches/convergence.py                 # 10 and 32 nodes, 5 runs each
    python benches/convergence.py --nodes 10 --runs 7

Prints a markdown table of median (min-max) seconds. All nodes run in this
process on 127.0.0.1 (local=True). `benches/run.py` runs `one_run` (in a
worker process, on the suite's loopback relay) beside native mosaik.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import mosaik

TIMEOUT = 60.0


async def one_run(
    nodes: int, run: int, *, relay: str = "default", timeout: float = TIMEOUT
) -> float:
    """Seconds from the first node being up until all `nodes` know each other.

    `relay` is passed to every node (under local=True, "default" means none).
    """
    name = f"bench-converge-{nodes}-{run}-{time.time_ns()}"
    first = await mosaik.Network.create(name, local=True, relay=relay)
    started = time.perf_counter()
    rest = await asyncio.gather(
        *(
            mosaik.Network.create(name, local=True, relay=relay, bootstrap=[first.address])
            for _ in range(nodes - 1)
        )
    )
    everyone = [first, *rest]
    try:
        await asyncio.wait_for(
            asyncio.gather(*(n.discovery.wait_for_peers(nodes - 1) for n in everyone)), timeout
        )
        return time.perf_counter() - started
    finally:
        await asyncio.gather(*(n.close() for n in everyone))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10, 32])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print("| nodes | time to full catalogs, median (min-max) | runs |")
    print("|---:|---|---:|")
    for nodes in args.nodes:
        times = [await one_run(nodes, run) for run in range(args.runs)]
        print(
            f"| {nodes} | {statistics.median(times) * 1000:.0f} ms "
            f"({min(times) * 1000:.0f}-{max(times) * 1000:.0f}) | {len(times)} |",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
