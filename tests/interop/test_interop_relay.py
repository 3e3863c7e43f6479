"""Our node and a real mosaik node reach each other through the local
iroh relay alone (addresses that carry no IP)."""

from __future__ import annotations

import asyncio
from typing import Any

import mosaik
from endpoint_tickets import decode, encode

from reference_peer import ReferencePeer
from waiting import until


async def test_ping_over_the_relay_in_both_directions(
    reference_peer: ReferencePeer, rust_node: dict[str, Any]
) -> None:
    relay = rust_node["relay"]
    async with mosaik.Network.create("demo", local=True, relay=relay) as net:
        # The relay appears in our address once iroh has chosen it as home.
        await until(lambda: relay in decode(net.address).relays, timeout=10, what="home relay")

        rust_by_relay = encode(rust_node["peer_id"], [], relays=(relay,))
        reply = await net.discovery.ping(rust_by_relay, timeout=10)
        assert reply.peer_id == rust_node["peer_id"]

        us_by_relay = {"id": net.peer_id, "relay": [relay], "ip": []}
        answer = await asyncio.wait_for(
            reference_peer.ask({"cmd": "ping", "addr": us_by_relay}), 15
        )
        assert answer["peer_id"] == net.peer_id
