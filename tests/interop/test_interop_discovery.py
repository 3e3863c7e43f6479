"""Discovery against a real mosaik 0.3.13 node, in both directions."""

from __future__ import annotations

import asyncio
from typing import Any

import mosaik

from reference_peer import ReferencePeer

API = mosaik.id_of("api").hex()
PYTHON = mosaik.id_of("python").hex()


async def rust_sees(peer: ReferencePeer, net: mosaik.Network, **extra: Any) -> dict[str, Any]:
    return await peer.ask(
        {"cmd": "wait_peer", "peer_id": net.peer_id, "timeout_ms": 10000, **extra}
    )


async def test_we_sync_with_the_rust_node_and_both_catalogs_fill(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    await our_node.discovery.sync_with(rust_node["address"])
    (rust,) = our_node.discovery.peers()
    assert rust.peer_id == rust_node["peer_id"]
    assert rust.tags == frozenset({API})  # its signature verified on the way in
    seen = await rust_sees(reference_peer, our_node, tags=[PYTHON])
    assert seen["signed"] is True
    assert seen["network"] == our_node.network_id


async def test_the_rust_node_syncs_with_us_and_both_catalogs_fill(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    await reference_peer.ask({"cmd": "sync", "ticket": our_node.address})
    await rust_sees(reference_peer, our_node, tags=[PYTHON])
    (rust,) = await our_node.discovery.wait_for_peers(1, timeout=10)
    assert rust.peer_id == rust_node["peer_id"] and rust.has_tag("api")


async def test_gossip_announcements_cross_in_both_directions(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    events = our_node.discovery.events()
    await our_node.discovery.sync_with(rust_node["address"])
    before = await rust_sees(reference_peer, our_node)

    # Our tag change reaches mosaik by gossip alone: no sync follows it.
    async def rust_gets_our_tag() -> dict[str, Any]:
        while True:
            await our_node.discovery.add_tags("gossip-test")
            try:
                return await rust_sees(
                    reference_peer,
                    our_node,
                    tags=[mosaik.id_of("gossip-test").hex()],
                    timeout_ms=1000,
                )
            except AssertionError:
                # Until the gossip neighbourship is up, re-announce.
                await our_node.discovery.remove_tags("gossip-test")

    seen = await asyncio.wait_for(rust_gets_our_tag(), 20)
    assert seen["version"] > before["version"]

    # mosaik's tag change reaches us by gossip.
    await reference_peer.ask({"cmd": "add_tags", "tags": ["rust-gossip"]})

    async def we_get_its_tag() -> None:
        async for event in events:
            if event.peer.peer_id == rust_node["peer_id"] and event.peer.has_tag("rust-gossip"):
                assert event.kind == "updated"
                return

    await asyncio.wait_for(we_get_its_tag(), 10)


async def test_departures_cross_in_both_directions(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    events = our_node.discovery.events()
    async with mosaik.Network.create("demo", local=True) as leaving:
        await leaving.discovery.sync_with(rust_node["address"])
        await rust_sees(reference_peer, leaving)
        await our_node.discovery.sync_with(rust_node["address"])
        # Wait until mosaik and `leaving` are gossip neighbours: a tag change arrives.
        await leaving.discovery.add_tags("x")
        await rust_sees(reference_peer, leaving, tags=[mosaik.id_of("x").hex()])
    gone = await reference_peer.ask(
        {"cmd": "wait_gone", "peer_id": leaving.peer_id, "timeout_ms": 5000}
    )
    assert gone["elapsed_ms"] < 5000

    await reference_peer.ask({"cmd": "shutdown"})

    async def rust_departs() -> None:
        async for event in events:
            if event.kind == "departed" and event.peer.peer_id == rust_node["peer_id"]:
                return

    await asyncio.wait_for(rust_departs(), 5)
