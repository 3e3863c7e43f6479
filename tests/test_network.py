"""Starting, using and closing nodes on loopback."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

import mosaik
from endpoint_tickets import decode

from waiting import until

SEED = bytes(range(32))
SEED_PEER_ID = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"


async def test_create_can_be_awaited_and_closed_idempotently() -> None:
    net = await mosaik.Network.create("demo", local=True)
    assert net.network_id == mosaik.id_of("demo").hex()
    assert len(net.peer_id) == 64 and int(net.peer_id, 16) >= 0
    assert not net.is_closed
    await net.close()
    await net.close()
    assert net.is_closed
    assert "closed" in repr(net)


async def test_async_with_closes_on_exit() -> None:
    async with mosaik.Network.create("demo", local=True) as net:
        assert not net.is_closed
    assert net.is_closed


async def test_async_with_closes_when_the_body_raises() -> None:
    with pytest.raises(ZeroDivisionError):
        async with mosaik.Network.create("demo", local=True) as net:
            1 / 0  # noqa: B018
    assert net.is_closed


async def test_closing_the_node_closes_its_producers_and_consumers() -> None:
    net = await mosaik.Network.create("demo", local=True)
    producer = net.streams.producer("a", codec="json")
    consumer = net.streams.consumer("b", codec="json")
    assert "closed" not in repr(producer) and "closed" not in repr(consumer)
    await net.close()
    assert "closed" in repr(producer), repr(producer)
    assert "closed" in repr(consumer), repr(consumer)
    with pytest.raises(mosaik.Closed):
        await asyncio.wait_for(consumer.recv(), 5)


async def test_secret_key_fixes_the_peer_id() -> None:
    async with mosaik.Network.create("demo", local=True, secret_key=SEED) as net:
        assert net.peer_id == SEED_PEER_ID


async def test_a_64_hex_network_name_is_the_network_id() -> None:
    network_id = "ab" * 32
    async with mosaik.Network.create(network_id, local=True) as net:
        assert net.network_id == network_id


async def test_local_address_is_loopback_only_and_names_this_peer(net: mosaik.Network) -> None:
    ticket = decode(net.address)
    assert ticket.peer_id == net.peer_id
    assert ticket.relays == []
    assert ticket.ips and all(ip.startswith("127.0.0.1:") for ip in ticket.ips)


async def test_bind_sets_the_port() -> None:
    import socket

    with socket.socket() as s:  # find a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with mosaik.Network.create("demo", local=True, bind=f"127.0.0.1:{port}") as net:
        assert decode(net.address).ips == [f"127.0.0.1:{port}"]


async def test_create_returns_promptly_when_the_relay_is_unreachable() -> None:
    started = time.monotonic()
    async with mosaik.Network.create("demo", local=True, relay="http://127.0.0.1:9") as net:
        elapsed = time.monotonic() - started
        assert net.peer_id
    assert elapsed < 2.0, elapsed


async def test_ping_returns_the_peers_signed_entry(
    net: mosaik.Network, peer: mosaik.Network
) -> None:
    first = await net.discovery.ping(peer.address)
    second = await net.discovery.ping(peer.address)
    assert first.peer_id == peer.peer_id
    assert first.network_id == peer.network_id
    assert first.has_tag("api") and not first.has_tag("db")
    assert first.tags == frozenset({mosaik.id_of("api").hex()})
    assert second.version > first.version
    assert decode(first.address).peer_id == peer.peer_id


async def test_bootstrap_accepts_addresses(peer: mosaik.Network) -> None:
    async with mosaik.Network.create("mosaik-tests", local=True, bootstrap=[peer.address]) as net:
        assert (await net.discovery.ping(peer.address)).peer_id == peer.peer_id


async def test_ping_to_a_silent_peer_times_out_with_connect_error(
    net: mosaik.Network, black_hole: str
) -> None:
    started = time.monotonic()
    with pytest.raises(mosaik.ConnectError):
        await net.discovery.ping(black_hole, timeout=0.5)
    assert time.monotonic() - started < 5


async def test_ping_after_close_raises_closed(peer: mosaik.Network) -> None:
    net = await mosaik.Network.create("demo", local=True)
    await net.close()
    with pytest.raises(mosaik.Closed):
        await net.discovery.ping(peer.address)


async def test_cancelling_an_await_drops_the_rust_future(
    net: mosaik.Network, black_hole: str
) -> None:
    from mosaik import _mosaik

    baseline = _mosaik._inflight()
    task = asyncio.create_task(net.discovery.ping(black_hole, timeout=None))
    await until(lambda: _mosaik._inflight() > baseline, what="the ping to start")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: _mosaik._inflight() == baseline, what="the Rust future to be dropped")


async def test_rust_logs_reach_python_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mosaik")
    mosaik.set_log_level(logging.INFO)
    try:
        net = await mosaik.Network.create("demo", local=True)
        await net.close()
        await until(
            lambda: any("node closed" in r.getMessage() for r in caplog.records),
            what="the 'node closed' log record",
        )
        record = next(r for r in caplog.records if "node started" in r.getMessage())
        assert record.name.startswith("mosaik.")
        assert record.levelno == logging.INFO
        assert net.peer_id[:10] in record.getMessage()
    finally:
        mosaik.set_log_level(logging.WARNING)


# -- bad arguments: each names the argument -------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"network": 42}, TypeError, "network"),
        ({"network": ""}, ValueError, "network"),
        ({"secret_key": "00" * 32}, TypeError, "secret_key"),
        ({"secret_key": b"short"}, ValueError, "secret_key"),
        ({"tags": "api"}, TypeError, "tags"),
        ({"tags": [1]}, TypeError, "tags"),
        ({"tags": 5}, TypeError, "tags"),
        ({"bootstrap": "endpointabc"}, TypeError, "bootstrap"),
        ({"bootstrap": ["not-an-address"]}, ValueError, "bootstrap"),
        ({"relay": None}, TypeError, "relay"),
        ({"relay": "sometimes"}, ValueError, "relay"),
        ({"relay": "https://relay.example.com"}, ValueError, "relay"),
        ({"bind": 8080}, TypeError, "bind"),
        ({"bind": "localhost"}, ValueError, "bind"),
        ({"bind": "0.0.0.0:0"}, ValueError, "bind"),
        ({"local": "yes"}, TypeError, "local"),
        ({"mdns": True}, ValueError, "mdns"),
        ({"mdns": 1}, TypeError, "mdns"),
        ({"dht": True}, ValueError, "dht"),
        ({"dht": "on"}, TypeError, "dht"),
    ],
)
async def test_bad_arguments_are_named(
    kwargs: dict[str, object], error: type[Exception], argument: str
) -> None:
    args: dict[str, object] = {"network": "demo", "local": True, **kwargs}
    with pytest.raises(error, match=rf"^{argument}\b"):
        await mosaik.Network.create(**args)  # type: ignore[arg-type]


async def test_bad_ping_arguments_are_named(net: mosaik.Network) -> None:
    with pytest.raises(TypeError, match="^address"):
        await net.discovery.ping(123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^address"):
        await net.discovery.ping("endpointnope")
    with pytest.raises(ValueError, match="^timeout"):
        await net.discovery.ping(net.address, timeout=-1)
    with pytest.raises(TypeError, match="^timeout"):
        await net.discovery.ping(net.address, timeout="1")  # type: ignore[arg-type]


def test_network_cannot_be_constructed_directly() -> None:
    with pytest.raises(TypeError, match="Network.create"):
        mosaik.Network("demo")  # type: ignore[arg-type]


def test_errors_share_one_base() -> None:
    for cls in (
        mosaik.Closed,
        mosaik.Full,
        mosaik.Offline,
        mosaik.Empty,
        mosaik.DecodeError,
        mosaik.ConnectError,
    ):
        assert issubclass(cls, mosaik.MosaikError)
    assert issubclass(mosaik.MosaikError, Exception)


def test_the_version_is_the_installed_packages() -> None:
    from importlib.metadata import version

    assert mosaik.__version__ == version("mosaik-net")
    assert mosaik.__version__.count(".") >= 2
