"""Two processes, one 64 B stream at full speed: a driver to profile under.

    unshare -n sh -c 'ip link set lo up; python benches/pair.py'
    # then, from another shell: perf record -p <pid of either child> -g

The parent starts a producer process (``send_many`` of 1024 × 64 B, lossless)
and a consumer process (``recv_batch(1024)``) on loopback (``local=True``),
both bounded by SECONDS, and prints what the consumer received per second.
It measures the installed ``mosaik``; install a release wheel first.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import mosaik

SECONDS = 10.0
BATCH = 1024


async def produce() -> None:
    async with mosaik.Network.create("bench-pair", local=True) as net:
        print(net.address, flush=True)
        producer = net.streams.producer("s", codec="bytes", buffer_size=BATCH, lagging="block")
        await asyncio.wait_for(producer.when.subscribed(1), 30)
        pool = [bytes(64) for _ in range(BATCH)]
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            try:
                await asyncio.wait_for(producer.send_many(pool), 2)
            except asyncio.TimeoutError:
                break  # the consumer has left


async def consume(address: str) -> None:
    async with mosaik.Network.create("bench-pair", local=True, bootstrap=[address]) as net:
        consumer = net.streams.consumer("s", codec="bytes")
        await asyncio.wait_for(consumer.when.subscribed(1), 30)
        got, started = 0, time.monotonic()
        while time.monotonic() - started < SECONDS - 1:
            try:
                got += len(await asyncio.wait_for(consumer.recv_batch(BATCH), 5))
            except asyncio.TimeoutError:
                break
        print(f"{got / (time.monotonic() - started):,.0f} datums/s", flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "produce":
        asyncio.run(produce())
    elif len(sys.argv) > 2 and sys.argv[1] == "consume":
        asyncio.run(consume(sys.argv[2]))
    else:
        me = [sys.executable, __file__]
        with subprocess.Popen([*me, "produce"], stdout=subprocess.PIPE, text=True) as producer:
            assert producer.stdout is not None
            address = producer.stdout.readline().strip()
            result = subprocess.run(
                [*me, "consume", address], capture_output=True, text=True, timeout=SECONDS + 60
            )
            print(result.stdout.strip() or result.stderr.strip())
            producer.wait(timeout=SECONDS + 30)


if __name__ == "__main__":
    main()
