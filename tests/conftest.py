"""Shared fixtures: every node here is local (loopback only)."""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import mosaik

sys.path.insert(0, str(Path(__file__).parent))

from endpoint_tickets import encode  # noqa: E402

from reference_peer import ReferencePeer  # noqa: E402


def in_loopback_only_namespace() -> bool:
    """True inside `unshare -n`: the only network interface is `lo`."""
    # Not /sys/class/net: sysfs shows the namespace it was mounted in.
    return [name for _, name in socket.if_nameindex()] == ["lo"]


@pytest.fixture
async def net() -> AsyncIterator[mosaik.Network]:
    async with mosaik.Network.create("mosaik-tests", local=True) as node:
        yield node


@pytest.fixture
async def peer() -> AsyncIterator[mosaik.Network]:
    async with mosaik.Network.create("mosaik-tests", local=True, tags=("api",)) as node:
        yield node


@pytest.fixture
async def pair(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[mosaik.Network, mosaik.Network]]:
    """Two nodes of one network (named after the test module) that know each other."""
    name = f"{request.module.__name__}-pair"
    async with mosaik.Network.create(name, local=True) as a:
        async with mosaik.Network.create(name, local=True, bootstrap=[a.address]) as b:
            await a.discovery.wait_for_peers(1, timeout=10)
            await b.discovery.wait_for_peers(1, timeout=10)
            yield a, b


@pytest.fixture
def black_hole() -> Iterator[str]:
    """The address of a peer that never answers: a UDP socket that reads nothing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    # Any valid Ed25519 point will do as the id: use a fixed seed's public key.
    peer_id = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    try:
        yield encode(peer_id, [("127.0.0.1", sock.getsockname()[1])])
    finally:
        sock.close()


@pytest.fixture
def reference_peer() -> Iterator[ReferencePeer]:
    """A real mosaik 0.3.13 process. Its iroh preset publishes to DNS and
    maps ports, which we cannot switch off, so it only ever runs in a
    network namespace that holds nothing but loopback."""
    if not in_loopback_only_namespace():
        pytest.fail(
            "interop tests run the real mosaik crate, which would reach the internet; "
            "run them inside `unshare -n` (scripts/test.sh does)"
        )
    peer = ReferencePeer()
    try:
        yield peer
    finally:
        peer.close()
        # Shown by pytest only when the test failed.
        noise = ("hickory", "pkarr", "dns")  # the N0 preset failing to publish, as expected
        lines = [line for line in peer.stderr if not any(n in line for n in noise)]
        print("reference peer stderr (tail):\n" + "".join(lines[-400:]))
