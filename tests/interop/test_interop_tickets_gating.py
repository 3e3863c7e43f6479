"""Tickets gating streams and groups between our nodes and a real mosaik
0.3.13 node: a Rust producer gated by mosaik's `Jwt` admits our consumer
holding a token our issuer made, our gated producer admits a Rust consumer
holding a token mosaik's builder made, and a group gated on both sides has
one id and bonds its ticket holders."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import mosaik

from reference_peer import ReferencePeer
from test_interop_groups import (
    COUNTER_TYPE_NAME,
    KEY,
    LONE_RUST,
    OUR_TIMERS,
    Counter,
    know_each_other,
)
from waiting import until

STRING = "alloc::string::String"
SECRET = bytes(range(32))
#: The reference peer's validator config and ours, for the same rule.
CONFIG = {"keys": [["HS256", SECRET.hex()]], "issuers": ["my-app"], "claims": {"role": "member"}}
OURS = mosaik.Jwt.hs256(SECRET, issuers=("my-app",), claims={"role": "member"})
ISSUER = mosaik.JwtIssuer.hs256(SECRET, issuer="my-app")


def token_for(peer_id: str, **claims: Any) -> str:
    return ISSUER.issue(subject=peer_id, expires_in=600, claims=claims or {"role": "member"})


@pytest.mark.timeout(60)
async def test_a_gated_rust_producer_admits_our_consumer_once_it_holds_a_ticket(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    made = await reference_peer.ask({"cmd": "produce", "type": "string", "require_ticket": CONFIG})
    await our_node.discovery.sync_with(rust_node["address"])
    # Without a ticket mosaik refuses us (10403) and we stop asking...
    consumer = our_node.streams.consumer(STRING, codec="str")
    await reference_peer.ask({"cmd": "sync", "ticket": our_node.address})
    # ...until our entry changes: with a ticket from our issuer, the consumer
    # hands mosaik our new entry and asks again.
    await our_node.discovery.add_ticket(token_for(our_node.peer_id))
    await asyncio.wait_for(consumer.when.subscribed(1), 15)
    items = [f"gated {i}" for i in range(10)]
    await reference_peer.ask({"cmd": "send", "stream_id": made["stream_id"], "items": items})
    assert [await asyncio.wait_for(consumer.recv(), 10) for _ in items] == items


@pytest.mark.timeout(60)
async def test_our_gated_producer_admits_a_rust_consumer_holding_a_crate_token(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    issued = await reference_peer.ask(
        {
            "cmd": "jwt_issue",
            "alg": "HS256",
            "key": SECRET.hex(),
            "peer_id": rust_node["peer_id"],
            "issuer": "my-app",
            "exp": None,
            "claims": {"role": "member"},
        }
    )
    # Non-expiring: only a validator that allows it admits the token.
    lenient = mosaik.Jwt.hs256(
        SECRET, issuers=("my-app",), claims={"role": "member"}, allow_non_expiring=True
    )
    added = await reference_peer.ask({"cmd": "add_ticket", "token": issued["token"]})
    assert added["ticket_id"] == issued["ticket_id"]
    producer = our_node.streams.producer(STRING, codec="str", require_ticket=lenient)
    await until(lambda: our_node.discovery.me().produces(STRING), what="our entry to list it")
    await our_node.discovery.sync_with(rust_node["address"])
    (seen,) = [p for p in our_node.discovery.peers() if p.peer_id == rust_node["peer_id"]]
    assert [t.id for t in seen.tickets] == [issued["ticket_id"]]
    made = await reference_peer.ask({"cmd": "consume", "type": "string"})
    await reference_peer.ask({"cmd": "sync", "ticket": our_node.address})
    await asyncio.wait_for(producer.when.subscribed(1), 15)
    await producer.send("admitted")
    got = await reference_peer.ask(
        {"cmd": "received", "stream_id": made["stream_id"], "count": 1, "timeout_ms": 10000}
    )
    assert got["items"] == ["admitted"]

    # Removing the ticket on the Rust side ends the subscription here.
    await reference_peer.ask({"cmd": "remove_ticket", "ticket_id": issued["ticket_id"]})
    await our_node.discovery.sync_with(rust_node["address"])
    await until(lambda: not producer.consumers, timeout=10, what="the subscription to end")


@pytest.mark.timeout(90)
async def test_a_group_gated_on_both_sides_has_one_id_and_bonds_ticket_holders(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    assert Counter.type_name == COUNTER_TYPE_NAME
    signature = await reference_peer.ask({"cmd": "jwt_signature", "config": CONFIG})
    assert OURS.signature == signature["signature"]
    await our_node.discovery.add_ticket(token_for(our_node.peer_id))
    await reference_peer.ask({"cmd": "add_ticket", "token": token_for(rust_node["peer_id"])})
    await know_each_other(reference_peer, rust_node, our_node)
    joined = await reference_peer.ask(
        {
            "cmd": "group_join",
            "key": KEY,
            "machine": "counter",
            "consensus": LONE_RUST,
            "require_ticket": CONFIG,
        }
    )
    await reference_peer.ask({"cmd": "group_wait_leader", "group_id": joined["group_id"]})
    async with our_node.groups.join(
        KEY, Counter(), consensus=OUR_TIMERS, require_ticket=[OURS]
    ) as group:
        assert joined["group_id"] == group.group_id
        async with our_node.groups.join(KEY, Counter(), consensus=OUR_TIMERS) as ungated:
            assert ungated.group_id != group.group_id, "validators are part of the id"
        assert await asyncio.wait_for(group.when.leader_elected(), 15) == rust_node["peer_id"]
        assert group.bonds == {rust_node["peer_id"]}
        await asyncio.wait_for(group.execute(5), 10)  # forwarded to the Rust leader
        made = await reference_peer.ask(
            {"cmd": "group_execute_many", "group_id": group.group_id, "commands": [7]}
        )
        await asyncio.wait_for(group.when.committed(made["end"]), 10)
        assert await asyncio.wait_for(group.query(consistency="strong"), 10) == 12
