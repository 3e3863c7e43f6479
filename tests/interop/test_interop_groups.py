"""Groups shared by our nodes and a real mosaik 0.3.13 node: one group id,
one leader whichever side leads, one state for a machine defined on both
sides, and catch-up from either side."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import mosaik

from reference_peer import ReferencePeer
from waiting import until

KEY = "demo-group-secret"
NOOP_GROUP_ID = "2f3948c78d20f9c6b5486a51b426137f90f2c3e935d3d21ce2537b7555fa8f03"
COUNTER_TYPE_NAME = "mosaik_interop_peer::groups::Counter"
# The leader heartbeats every heartbeat_interval (500 ms, in the group id):
# followers need a longer election timeout. The bootstrap delay gives a
# newcomer time to bond before it would stand.
RUST_TIMERS = {
    "bootstrap_delay_ms": 2500,
    "election_timeout_ms": 1500,
    "election_timeout_jitter_ms": 500,
}
OUR_TIMERS = mosaik.ConsensusConfig(
    bootstrap_delay=2.5, election_timeout=1.5, election_timeout_jitter=0.5
)
# A member alone from the start elects itself quickly.
LONE_RUST = {
    "bootstrap_delay_ms": 200,
    "election_timeout_ms": 1500,
    "election_timeout_jitter_ms": 100,
}
LONE_OURS = mosaik.ConsensusConfig(
    bootstrap_delay=0.2, election_timeout=1.5, election_timeout_jitter=0.1
)


class Counter(mosaik.StateMachine):
    """The reference peer's `Counter`: i64 commands added to a total."""

    signature = "counter-v1"
    type_name = COUNTER_TYPE_NAME
    command_codec = "i64"
    query_codec = "()"
    result_codec = "i64"

    def __init__(self) -> None:
        self.total = 0

    def apply(self, command: int, ctx: mosaik.ApplyContext) -> None:
        self.total += command

    def query(self, query: None) -> int:
        return self.total


async def know_each_other(peer: ReferencePeer, rust: dict[str, Any], ours: mosaik.Network) -> None:
    await ours.discovery.sync_with(rust["address"])
    await peer.ask({"cmd": "sync", "ticket": ours.address})


async def rust_join(peer: ReferencePeer, machine: str, consensus: dict[str, int]) -> str:
    joined = await peer.ask(
        {"cmd": "group_join", "key": KEY, "machine": machine, "consensus": consensus}
    )
    return str(joined["group_id"])


async def rust_status(peer: ReferencePeer, group_id: str) -> dict[str, Any]:
    return await peer.ask({"cmd": "group_status", "group_id": group_id})


@pytest.mark.timeout(60)
async def test_a_rust_leader_leads_our_noop_member(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    await know_each_other(reference_peer, rust_node, our_node)
    group_id = await rust_join(reference_peer, "noop", LONE_RUST)
    assert group_id == NOOP_GROUP_ID
    await reference_peer.ask({"cmd": "group_wait_leader", "group_id": group_id})
    async with our_node.groups.join(KEY, consensus=OUR_TIMERS) as group:
        assert group.group_id == NOOP_GROUP_ID
        leader = await asyncio.wait_for(group.when.leader_elected(), 15)
        assert leader == rust_node["peer_id"]
        assert group.bonds == {rust_node["peer_id"]}
        # Our command goes to the Rust leader and is applied here.
        index = await asyncio.wait_for(group.execute(), 10)
        assert group.committed >= index
        rust = await reference_peer.ask(
            {"cmd": "group_wait_committed", "group_id": group_id, "index": index}
        )
        assert rust["committed"] >= index
        # The Rust member's commands reach us.
        made = await reference_peer.ask(
            {"cmd": "group_execute_many", "group_id": group_id, "count": 3}
        )
        await asyncio.wait_for(group.when.committed(made["end"]), 10)
        assert (await rust_status(reference_peer, group_id))["leader"] == rust_node["peer_id"]


@pytest.mark.timeout(60)
async def test_our_leader_leads_a_rust_noop_member(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    async with our_node.groups.join(KEY, consensus=LONE_OURS) as group:
        await asyncio.wait_for(group.when.is_leader(), 15)
        await know_each_other(reference_peer, rust_node, our_node)
        group_id = await rust_join(reference_peer, "noop", RUST_TIMERS)
        assert group_id == group.group_id
        waited = await reference_peer.ask(
            {"cmd": "group_wait_leader", "group_id": group_id, "leader": our_node.peer_id}
        )
        assert waited["leader"] == our_node.peer_id
        await reference_peer.ask({"cmd": "group_wait_online", "group_id": group_id})
        # The Rust follower forwards its command to us.
        made = await reference_peer.ask({"cmd": "group_execute", "group_id": group_id})
        await asyncio.wait_for(group.when.committed(made["index"]), 10)
        index = await asyncio.wait_for(group.execute(), 10)
        rust = await reference_peer.ask(
            {"cmd": "group_wait_committed", "group_id": group_id, "index": index}
        )
        assert rust["committed"] >= index
        assert group.is_leader and group.bonds == {rust_node["peer_id"]}


@pytest.mark.timeout(90)
async def test_a_counter_defined_in_rust_and_python_shares_one_state(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    await know_each_other(reference_peer, rust_node, our_node)
    group_id = await rust_join(reference_peer, "counter", LONE_RUST)
    await reference_peer.ask({"cmd": "group_wait_leader", "group_id": group_id})
    # The Rust member commits before we join: we catch up by log replay.
    before = await reference_peer.ask(
        {"cmd": "group_execute_many", "group_id": group_id, "commands": list(range(1, 51))}
    )
    async with our_node.groups.join(KEY, Counter(), consensus=OUR_TIMERS) as group:
        assert group.group_id == group_id
        machine = group.machine
        assert isinstance(machine, Counter)
        await asyncio.wait_for(group.when.committed(before["end"]), 20)
        await until(lambda: machine.total == sum(range(1, 51)), what="the replayed total")
        await asyncio.wait_for(group.execute(-25), 10)
        assert machine.total == sum(range(1, 51)) - 25
        rust_total = await reference_peer.ask(
            {"cmd": "group_query", "group_id": group_id, "consistency": "strong"}
        )
        assert rust_total["result"] == machine.total
        assert await asyncio.wait_for(group.query(consistency="strong"), 10) == machine.total


@pytest.mark.timeout(90)
async def test_a_rust_member_catches_up_from_ours(
    reference_peer: ReferencePeer, rust_node: dict[str, Any], our_node: mosaik.Network
) -> None:
    async with our_node.groups.join(KEY, Counter(), consensus=LONE_OURS) as group:
        await asyncio.wait_for(group.when.is_leader(), 15)
        made = await asyncio.wait_for(group.execute_many(range(1, 101)), 10)
        await know_each_other(reference_peer, rust_node, our_node)
        group_id = await rust_join(reference_peer, "counter", RUST_TIMERS)
        assert group_id == group.group_id
        await reference_peer.ask(
            {
                "cmd": "group_wait_committed",
                "group_id": group_id,
                "index": made[-1],
                "timeout_ms": 20000,
            }
        )
        answer = await reference_peer.ask({"cmd": "group_query", "group_id": group_id})
        assert answer["result"] == sum(range(1, 101))
