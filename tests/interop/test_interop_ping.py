"""The real mosaik 0.3.13 crate starts against our local relay, and ping
works in both directions between it and our nodes."""

from __future__ import annotations

from typing import Any

import mosaik
from endpoint_tickets import decode

from reference_peer import ReferencePeer


async def test_the_rust_node_starts_on_the_local_relay(rust_node: dict[str, Any]) -> None:
    assert rust_node["network_id"] == mosaik.id_of("demo").hex()
    assert rust_node["relay"].startswith("http://127.0.0.1:")
    assert decode(rust_node["address"]).peer_id == rust_node["peer_id"]
    assert rust_node["relay"] in rust_node["addr"]["relay"]


async def test_our_ids_match_the_real_crate(reference_peer: ReferencePeer) -> None:
    vectors = await reference_peer.ask({"cmd": "echo_vectors"})
    assert vectors["network_demo"] == mosaik.id_of("demo").hex()
    assert vectors["tag_api"] == mosaik.id_of("api").hex()
    assert vectors["stream_string"] == mosaik.id_of("alloc::string::String").hex()


async def test_we_ping_the_rust_node_and_verify_its_entry(
    rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    first = await our_node.discovery.ping(rust_node["address"])
    second = await our_node.discovery.ping(rust_node["address"])
    assert first.peer_id == rust_node["peer_id"]
    assert first.network_id == rust_node["network_id"]
    assert first.has_tag("api")
    assert first.tags == frozenset({mosaik.id_of("api").hex()})
    assert first.streams == frozenset()
    # mosaik bumps and re-signs its entry for every ping reply.
    assert second.version[0] == first.version[0]
    assert second.version > first.version
    assert rust_node["relay"] in decode(first.address).relays


async def test_the_rust_node_pings_us_and_verifies_our_entry(
    reference_peer: ReferencePeer, our_node: mosaik.Network
) -> None:
    reply = await reference_peer.ask({"cmd": "ping", "ticket": our_node.address})
    assert reply["peer_id"] == our_node.peer_id
    assert reply["network"] == our_node.network_id
    assert reply["tags"] == [mosaik.id_of("python").hex()]
    assert reply["protocol"] == mosaik.PROTOCOL_VERSION
    started, updated = reply["version"]
    assert 0 < started <= updated
