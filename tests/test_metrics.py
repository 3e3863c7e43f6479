"""Metrics: `mosaik.metrics.serve` is scraped over HTTP on loopback and the
Prometheus text it returns reflects what the nodes did."""

from __future__ import annotations

import asyncio
import gc
import urllib.request
import weakref

import pytest

import mosaik

pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import mosaik.metrics  # noqa: E402

from waiting import until  # noqa: E402

N = 250
FAST = mosaik.ConsensusConfig(bootstrap_delay=0.5)

Sample = tuple[str, dict[str, str], float]


async def scrape(url: str) -> list[Sample]:
    def get() -> str:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            return str(response.read().decode())

    text = await asyncio.to_thread(get)
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def values(samples: list[Sample], name: str, **labels: str) -> list[float]:
    """The values of the samples of ``name`` whose labels include ``labels``."""
    return [v for n, ls, v in samples if n == name and labels.items() <= ls.items()]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    (only,) = values(samples, name, **labels)
    return only


async def test_a_scrape_reflects_streams_groups_and_the_catalog() -> None:
    async with (
        mosaik.Network.create("mosaik-tests", local=True) as a,
        mosaik.Network.create("mosaik-tests", local=True, bootstrap=[a.address]) as b,
    ):
        await b.discovery.wait_for_peers(1, timeout=30)
        await a.discovery.wait_for_peers(1, timeout=30)
        p = a.streams.producer("sensors", codec="json", lagging="block")
        c = b.streams.consumer("sensors", codec="json")
        gated = a.streams.producer("gated", require=lambda peer: False)
        refused = b.streams.consumer("gated")
        await c.when.subscribed(1)
        await p.send_many([{"i": i} for i in range(N)])
        received = []
        while len(received) < N:
            received += await c.recv_batch()
        await until(lambda: gated.refusals.get("require", 0) >= 1, timeout=10, what="a refusal")
        groups = [net.groups.join("metrics-group", consensus=FAST) for net in (a, b)]
        leader = await groups[0].when.leader_elected()
        await groups[1].when.leader_is(leader)
        index = await groups[0].execute()
        await groups[1].when.committed(index)

        with mosaik.metrics.serve(0) as server:  # every open network of this process
            assert server.addr == "127.0.0.1" and server.port > 0
            samples = await scrape(server.url)

        of_a = {"peer_id": a.peer_id, "network": a.network_id}
        of_b = {"peer_id": b.peer_id, "network": b.network_id}
        assert value(samples, "mosaik_catalog_peers", **of_a) == 1
        assert value(samples, "mosaik_catalog_peers", **of_b) == 1

        sent = value(samples, "mosaik_producer_sent_datums_total", stream="sensors", **of_a)
        assert sent == N
        sent_bytes = value(samples, "mosaik_producer_sent_bytes_total", stream="sensors", **of_a)
        assert sent_bytes == p.stats.bytes > N
        assert value(samples, "mosaik_producer_online", stream="sensors", **of_a) == 1
        connected = {"stream": "sensors", "state": "connected"}
        assert value(samples, "mosaik_producer_subscriptions", **connected, **of_a) == 1
        refusals = "mosaik_producer_refusals_total"
        assert value(samples, refusals, stream="gated", reason="require", **of_a) >= 1
        assert values(samples, refusals, stream="sensors") == []

        got = value(samples, "mosaik_consumer_received_datums_total", stream="sensors", **of_b)
        assert got == N
        got_bytes = value(samples, "mosaik_consumer_received_bytes_total", stream="sensors", **of_b)
        assert got_bytes == sent_bytes
        assert value(samples, "mosaik_consumer_producers", **connected, **of_b) == 1
        assert value(samples, "mosaik_consumer_dropped_datums_total", stream="sensors") == 0
        assert value(samples, "mosaik_consumer_producers", stream="gated", state="connected") == 0

        group = {"group": groups[0].group_id}
        for of in (of_a, of_b):
            assert value(samples, "mosaik_group_committed_index", **group, **of) == index
            assert value(samples, "mosaik_group_leader_known", **group, **of) == 1
            assert value(samples, "mosaik_group_bonds", **group, **of) == 1
            assert value(samples, "mosaik_group_term", **group, **of) >= 1
        assert sum(values(samples, "mosaik_group_is_leader", **group)) == 1
        assert value(samples, "mosaik_group_is_leader", peer_id=leader) == 1

        # Only the networks asked for; a closed one leaves the scrape.
        with mosaik.metrics.serve(0, networks=[a, b]) as server:
            await b.close()
            samples = await scrape(server.url)
        assert values(samples, "mosaik_catalog_peers", peer_id=b.peer_id) == []
        assert values(samples, "mosaik_consumer_received_datums_total") == []
        assert value(samples, "mosaik_producer_sent_datums_total", stream="sensors") == N
        await refused.close()


async def test_the_endpoint_holds_networks_weakly() -> None:
    net = await mosaik.Network.create("mosaik-tests", local=True)
    with mosaik.metrics.serve(0, networks=[net]) as server:
        assert len(values(await scrape(server.url), "mosaik_catalog_peers")) == 1
        await net.close()
        gone = weakref.ref(net)
        del net
        gc.collect()
        assert gone() is None
        assert values(await scrape(server.url), "mosaik_catalog_peers") == []


def test_the_endpoint_stops_on_close() -> None:
    server = mosaik.metrics.serve(0)
    url = server.url
    server.close()
    server.close()  # idempotent
    assert "closed" in repr(server)
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"port": -1}, ValueError, "port"),
        ({"port": 65536}, ValueError, "port"),
        ({"port": "9464"}, TypeError, "port"),
        ({"port": True}, TypeError, "port"),
        ({"port": 0, "addr": ""}, ValueError, "addr"),
        ({"port": 0, "addr": 127}, TypeError, "addr"),
        ({"port": 0, "networks": "net"}, TypeError, "networks"),
        ({"port": 0, "networks": [object()]}, TypeError, "networks"),
    ],
)
def test_bad_arguments_are_refused_by_name(
    kwargs: dict[str, object], error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=f"^{argument}:"):
        mosaik.metrics.serve(**kwargs)  # type: ignore[arg-type]
