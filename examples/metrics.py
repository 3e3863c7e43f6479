"""Serves two nodes' counters as Prometheus text and scrapes them once
(needs ``pip install 'mosaik-net[metrics]'``)."""

import asyncio
import urllib.request

import mosaik
import mosaik.metrics


def scrape(url: str) -> str:
    with urllib.request.urlopen(url) as response:
        return response.read().decode()


async def main() -> None:
    async with (
        mosaik.Network.create("my-app", local=True) as a,
        mosaik.Network.create("my-app", local=True, bootstrap=[a.address]) as b,
    ):
        p = a.streams.producer("sensors", codec="json")
        c = b.streams.consumer("sensors", codec="json")
        await c.when.subscribed(1)
        await p.send({"t": 21.5})
        await c.recv()
        # Every open network of this process, at http://127.0.0.1:9464/metrics
        # with serve(9464); port 0 picks a free one. networks=[a] serves only a.
        with mosaik.metrics.serve(0) as server:
            text = await asyncio.to_thread(scrape, server.url)
        sent = [line for line in text.splitlines() if line.startswith("mosaik_producer_sent")]
        print(sent[0].split("{")[0], sent[0].endswith(" 1.0"))
        # mosaik_producer_sent_datums_total True


asyncio.run(main())
