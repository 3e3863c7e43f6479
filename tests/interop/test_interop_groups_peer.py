"""Consensus groups run by the real mosaik 0.3.13 crate alone (the reference
peer), before our own groups exist: the identity numbers of
groups-protocol.md §8 and a lone member's election, commits and queries."""

from __future__ import annotations

from typing import Any

import pytest

from reference_peer import ReferencePeer

KEY = "demo-group-secret"
# groups-protocol.md §8: NoOp machine, default ConsensusConfig and LogReplaySync.
SPEC = {
    "secret": "6f900cd7c4f5fb89d70c8f9eafd82e48d7c4df26e2c8f5302dd7a460567bb8c2",
    "secret_hashed": "1d1b8d7c35d39dacaf05931f1e00ffc9267d50d9b0edeeef78e294df5c6573a4",
    "consensus_digest": "adfe74a86dd01a601b37bf2fa5b6bb292ac49656393b7e0ad47f7766c5bb8022",
    "noop_signature": "8149f518646f75ad984e3d0256bff30e9256ec4659057f2bfe8f57282bb0cf61",
    "noop_sync_signature": "eaaef1b2c7c7717fda72accddba9b23ba259f2b149ceb20e365253e58f667d64",
    "group_id": "2f3948c78d20f9c6b5486a51b426137f90f2c3e935d3d21ce2537b7555fa8f03",
}
NOOP_TYPE_NAME = "mosaik::groups::machine::noop::NoOp"
COUNTER_TYPE_NAME = "mosaik_interop_peer::groups::Counter"
# A lone member elects itself after bootstrap_delay + election_timeout (+ jitter):
# 0.2 s + 0.3–0.4 s here instead of the default 3 s + 2–2.5 s. None of these
# fields is part of the group id.
FAST = {"bootstrap_delay_ms": 200, "election_timeout_ms": 300, "election_timeout_jitter_ms": 100}
# Two members: the leader's AppendEntries heartbeat is heartbeat_interval
# (500 ms, in the id), so followers need a longer election timeout than that or
# they keep deposing the leader. The bootstrap delay leaves time to bond first.
PAIR = {"bootstrap_delay_ms": 2500, "election_timeout_ms": 1500, "election_timeout_jitter_ms": 500}
OFFLINE = "Group is temporarily offline and cannot process commands"


async def join(peer: ReferencePeer, machine: str, **extra: Any) -> dict[str, Any]:
    return await peer.ask({"cmd": "group_join", "key": KEY, "machine": machine, **extra})


async def test_the_crate_derives_the_spec_group_identity(reference_peer: ReferencePeer) -> None:
    vectors = await reference_peer.ask({"cmd": "group_vectors", "key": KEY})
    assert {name: vectors[name] for name in SPEC} == SPEC
    assert vectors["noop_type_name"] == NOOP_TYPE_NAME
    assert vectors["counter_type_name"] == COUNTER_TYPE_NAME
    fast = await reference_peer.ask({"cmd": "group_vectors", "key": KEY, "consensus": FAST})
    assert fast["group_id"] == SPEC["group_id"]  # timers outside the id
    slower = await reference_peer.ask(
        {"cmd": "group_vectors", "key": KEY, "consensus": {"heartbeat_interval_ms": 501}}
    )
    assert slower["group_id"] != SPEC["group_id"]


@pytest.mark.timeout(60)
async def test_joined_groups_have_the_derived_ids(
    reference_peer: ReferencePeer, rust_node: dict[str, Any]
) -> None:
    vectors = await reference_peer.ask({"cmd": "group_vectors", "key": KEY})
    noop = await join(reference_peer, "noop")
    assert noop["group_id"] == SPEC["group_id"]
    assert noop["type_name"] == NOOP_TYPE_NAME
    counter = await join(reference_peer, "counter")
    assert counter["group_id"] == vectors["counter_group_id"]
    assert counter["type_name"] == COUNTER_TYPE_NAME

    again = await reference_peer.ask_async_raw({"cmd": "group_join", "key": KEY})
    assert again["ok"] is False and "already joined" in again["error"]
    await reference_peer.ask({"cmd": "group_leave", "group_id": noop["group_id"]})
    gone = await reference_peer.ask_async_raw({"cmd": "group_status", "group_id": noop["group_id"]})
    assert gone["ok"] is False
    rejoined = await join(reference_peer, "noop", consensus=FAST)
    assert rejoined["group_id"] == SPEC["group_id"]
    assert rejoined["consensus"]["bootstrap_delay_ms"] == 200


@pytest.mark.timeout(60)
async def test_a_member_without_a_leader_refuses_at_once_and_waits_are_bounded(
    reference_peer: ReferencePeer, rust_node: dict[str, Any]
) -> None:
    # Default timers: no election before 3 s + 2 s.
    group_id = (await join(reference_peer, "counter"))["group_id"]
    status = await reference_peer.ask({"cmd": "group_status", "group_id": group_id})
    assert status == {
        "ok": True,
        "leader": None,
        "is_leader": False,
        "online": False,
        "committed": 0,
        "log_position": [0, 0],
        "bonds": [],
    }
    refused = await reference_peer.ask_async_raw(
        {"cmd": "group_execute", "group_id": group_id, "command": 1, "timeout_ms": 2000}
    )
    assert refused == {"ok": False, "error": OFFLINE}
    empty = await reference_peer.ask_async_raw(
        {"cmd": "group_execute_many", "group_id": group_id, "commands": []}
    )
    assert empty == {"ok": False, "error": "No commands provided"}
    # A follower answers weak queries from its own state, leader or not;
    # strong ones go to the leader, and there is none.
    weak = await reference_peer.ask({"cmd": "group_query", "group_id": group_id})
    assert weak == {"ok": True, "result": 0, "at": 0}
    strong = await reference_peer.ask_async_raw(
        {"cmd": "group_query", "group_id": group_id, "consistency": "strong", "timeout_ms": 2000}
    )
    assert strong == {
        "ok": False,
        "error": "Group is temporarily offline and cannot process queries",
    }
    waited = await reference_peer.ask_async_raw(
        {"cmd": "group_wait_leader", "group_id": group_id, "timeout_ms": 300}
    )
    assert waited["ok"] is False and "timed out after 300 ms" in waited["error"]


@pytest.mark.timeout(60)
async def test_a_lone_noop_member_elects_itself_and_commits(
    reference_peer: ReferencePeer, rust_node: dict[str, Any]
) -> None:
    group_id = (await join(reference_peer, "noop", consensus=FAST))["group_id"]
    elected = await reference_peer.ask(
        {"cmd": "group_wait_leader", "group_id": group_id, "timeout_ms": 10000}
    )
    assert elected["leader"] == rust_node["peer_id"]
    await reference_peer.ask({"cmd": "group_wait_online", "group_id": group_id})

    first = await reference_peer.ask({"cmd": "group_execute", "group_id": group_id})
    rest = await reference_peer.ask({"cmd": "group_execute_many", "group_id": group_id, "count": 2})
    assert rest["start"] == first["index"] + 1 and rest["end"] == first["index"] + 2
    committed = await reference_peer.ask(
        {"cmd": "group_wait_committed", "group_id": group_id, "index": 3, "timeout_ms": 5000}
    )
    assert committed["committed"] >= 3

    status = await reference_peer.ask({"cmd": "group_status", "group_id": group_id})
    assert status["leader"] == rust_node["peer_id"]
    assert status["is_leader"] is True and status["online"] is True
    assert status["committed"] >= 3 and status["log_position"][1] >= 3
    assert status["log_position"][0] >= 1  # elected in a term after 0
    assert status["bonds"] == []
    answer = await reference_peer.ask(
        {"cmd": "group_query", "group_id": group_id, "consistency": "strong"}
    )
    assert answer["result"] is None and answer["at"] >= 3


@pytest.mark.timeout(60)
async def test_a_lone_counter_member_applies_commands_and_answers_queries(
    reference_peer: ReferencePeer, rust_node: dict[str, Any]
) -> None:
    group_id = (await join(reference_peer, "counter", consensus=FAST))["group_id"]
    await reference_peer.ask({"cmd": "group_wait_leader", "group_id": group_id})
    await reference_peer.ask({"cmd": "group_wait_online", "group_id": group_id})

    made = await reference_peer.ask(
        {"cmd": "group_execute_many", "group_id": group_id, "commands": [1, 2, 3]}
    )
    assert made["end"] - made["start"] == 2
    for consistency in ("weak", "strong"):
        answer = await reference_peer.ask(
            {"cmd": "group_query", "group_id": group_id, "consistency": consistency}
        )
        assert answer == {"ok": True, "result": 6, "at": made["end"]}

    fed = await reference_peer.ask({"cmd": "group_feed", "group_id": group_id, "command": -10})
    assert fed["index"] == made["end"] + 1
    await reference_peer.ask(
        {"cmd": "group_wait_committed", "group_id": group_id, "index": fed["index"]}
    )
    answer = await reference_peer.ask({"cmd": "group_query", "group_id": group_id})
    assert answer["result"] == -4 and answer["at"] >= fed["index"]
    bad = await reference_peer.ask_async_raw(
        {"cmd": "group_execute", "group_id": group_id, "command": "x"}
    )
    assert bad["ok"] is False


async def bond(a: ReferencePeer, b: ReferencePeer, b_address: str, group_id: str) -> int:
    """Waits until `a` and `b` hold a bond; answers how many nudges it took.

    When both members dial each other at the same moment, mosaik 0.3.13 closes
    both connections as duplicates (30429) and re-dials only on the next
    catalog change (groups-protocol.md §2.6); here that happens in about one
    pairing in ten. A nudge is such a change: `b` re-signs its entry with a new
    tag and `a` pulls it, so only `a` dials.
    """
    for nudges in range(5):
        waits = [
            await p.ask_async_raw(
                {"cmd": "group_wait_bonds", "group_id": group_id, "timeout_ms": 400}
            )
            for p in (a, b)
        ]
        # The duplicate close can land just after a bond formed: count the
        # bond only if both sides still hold it once both have seen it.
        if all(w["ok"] for w in waits):
            statuses = [await p.ask({"cmd": "group_status", "group_id": group_id}) for p in (a, b)]
            if all(status["bonds"] for status in statuses):
                return nudges
        await b.ask({"cmd": "add_tags", "tags": [f"nudge-{nudges}"]})
        await a.sync(b_address)
    raise AssertionError(f"no bond after 5 nudges: {waits}")


@pytest.mark.timeout(90)
async def test_two_real_members_bond_elect_one_leader_and_replicate(
    reference_peer: ReferencePeer, rust_node: dict[str, Any]
) -> None:
    other = ReferencePeer()
    try:
        started = await other.ask({"cmd": "start", "network": "demo", "relay": rust_node["relay"]})
        peers = {rust_node["peer_id"]: reference_peer, started["peer_id"]: other}
        group_id = (await join(reference_peer, "counter", consensus=PAIR))["group_id"]
        # `other` learns the first member's entry (listing the group), then
        # joins: its worker finds the group in its catalog and dials.
        await other.sync(rust_node["address"])
        assert (await join(other, "counter", consensus=PAIR))["group_id"] == group_id
        nudges = await bond(reference_peer, other, started["address"], group_id)
        print(f"bonded after {nudges} nudges")
        for peer_id, p in peers.items():
            status = await p.ask({"cmd": "group_status", "group_id": group_id})
            assert status["bonds"] == list(set(peers) - {peer_id})

        leader_id = (await reference_peer.ask({"cmd": "group_wait_leader", "group_id": group_id}))[
            "leader"
        ]
        assert leader_id in peers
        (follower_id,) = set(peers) - {leader_id}
        follower = peers[follower_id]
        await follower.ask({"cmd": "group_wait_leader", "group_id": group_id, "leader": leader_id})
        await follower.ask({"cmd": "group_wait_online", "group_id": group_id})

        # Forwarded by the follower to the leader.
        made = await follower.ask(
            {"cmd": "group_execute_many", "group_id": group_id, "commands": [1, 2, 3]}
        )
        for peer_id, p in peers.items():
            await p.ask({"cmd": "group_wait_committed", "group_id": group_id, "index": made["end"]})
            status = await p.ask({"cmd": "group_status", "group_id": group_id})
            assert status["leader"] == leader_id
            assert status["is_leader"] is (peer_id == leader_id)
            for consistency in ("weak", "strong"):
                answer = await p.ask(
                    {"cmd": "group_query", "group_id": group_id, "consistency": consistency}
                )
                assert answer["result"] == 6 and answer["at"] >= made["end"]

        # Leaving broadcasts a Departure: the other member drops the bond.
        await follower.ask({"cmd": "group_leave", "group_id": group_id})
        alone = await peers[leader_id].ask(
            {"cmd": "group_wait_bonds", "group_id": group_id, "minimum": 0, "maximum": 0}
        )
        assert alone["bonds"] == []
        print(f"bond dropped {alone['elapsed_ms']} ms after the leave")
    finally:
        other.close()
