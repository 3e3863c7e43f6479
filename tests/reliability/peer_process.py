"""Child processes for the fault tests: a producer or a consumer node that
runs until it is killed, talking to the test through stdout lines.

    python peer_process.py producer NETWORK BOOTSTRAP SECRET_HEX RUN CONSUMERS COUNT
        "address ADDR" as soon as the node is up (BOOTSTRAP "-": none);
        "ready" once CONSUMERS consumers are connected; then sends [RUN, n]
        for n in 0..COUNT (json codec, lagging="block") and prints
        "sent COUNT"; then keeps sending [RUN, n], n >= COUNT, in small
        paced batches until killed, so a kill lands mid-stream.
    python peer_process.py consumer NETWORK BOOTSTRAP
        "ready" once subscribed, then "got N" every 100 datums.
    python peer_process.py crowd NETWORK BOOTSTRAP COUNT TOTAL
        COUNT nodes; "ready" once each knows TOTAL - 1 others; closes them
        all when stdin closes, then prints "closed".

Every node is local=True (loopback only).
"""

from __future__ import annotations

import asyncio
import sys

import mosaik

STREAM = "numbers"


async def produce(
    network: str, bootstrap: str, secret: str, run: int, consumers: int, count: int
) -> None:
    async with mosaik.Network.create(
        network,
        local=True,
        secret_key=bytes.fromhex(secret),
        bootstrap=[] if bootstrap == "-" else [bootstrap],
    ) as net:
        print(f"address {net.address}", flush=True)
        producer = net.streams.producer(STREAM, codec="json", lagging="block")
        await producer.when.subscribed(consumers)
        print("ready", flush=True)
        await producer.send_many([[run, n] for n in range(count)])
        print(f"sent {count}", flush=True)
        # Then a steady trickle, so a kill can land mid-stream.
        n = count
        while True:
            await producer.send_many([[run, i] for i in range(n, n + 50)])
            n += 50
            await asyncio.sleep(0.005)


async def consume(network: str, bootstrap: str) -> None:
    async with mosaik.Network.create(network, local=True, bootstrap=[bootstrap]) as net:
        consumer = net.streams.consumer(STREAM, codec="json")
        await consumer.when.subscribed(1)
        print("ready", flush=True)
        got = 0
        async for _ in consumer:
            got += 1
            if got % 100 == 0:
                print(f"got {got}", flush=True)


async def crowd(network: str, bootstrap: str, count: int, total: int) -> None:
    crowd = await asyncio.gather(
        *(mosaik.Network.create(network, local=True, bootstrap=[bootstrap]) for _ in range(count))
    )
    await asyncio.gather(*(n.discovery.wait_for_peers(total - 1) for n in crowd))
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await asyncio.gather(*(n.close() for n in crowd))
    print("closed", flush=True)


def main() -> None:
    role, *args = sys.argv[1:]
    if role == "producer":
        network, bootstrap, secret, run, consumers, count = args
        asyncio.run(produce(network, bootstrap, secret, int(run), int(consumers), int(count)))
    elif role == "consumer":
        network, bootstrap = args
        asyncio.run(consume(network, bootstrap))
    elif role == "crowd":
        network, bootstrap, count, total = args
        asyncio.run(crowd(network, bootstrap, int(count), int(total)))
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main()
