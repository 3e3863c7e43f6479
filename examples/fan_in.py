"""Fan-in: three producers on three nodes, one consumer that reads them all,
each producer's datums in its own order."""

import asyncio

import mosaik


async def main() -> None:
    async with mosaik.Network.create("fan-in", local=True) as hub:
        sensors = [
            await mosaik.Network.create("fan-in", local=True, bootstrap=[hub.address])
            for _ in range(3)
        ]
        try:
            readings = hub.streams.consumer("readings", codec="json")
            producers = [
                node.streams.producer("readings", codec="json", lagging="block") for node in sensors
            ]
            await asyncio.wait_for(readings.when.subscribed(3), 20)
            for sensor, producer in enumerate(producers):
                await asyncio.wait_for(producer.when.online(), 20)
                await producer.send_many([{"sensor": sensor, "n": n} for n in range(100)])
            seen: dict[int, list[int]] = {0: [], 1: [], 2: []}
            while sum(map(len, seen.values())) < 300:
                for reading in await asyncio.wait_for(readings.recv_batch(), 20):
                    seen[reading["sensor"]].append(reading["n"])
            # Every sensor's readings arrived, each in the order it sent them.
            print(all(numbers == list(range(100)) for numbers in seen.values()))  # True
            print(len(readings.producers) == 3)  # True
        finally:
            await asyncio.gather(*(node.close() for node in sensors))


asyncio.run(main())
