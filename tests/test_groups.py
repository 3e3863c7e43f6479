"""Groups between our nodes on loopback, as a user sees them: one leader, one
order of commands on every member, queries, leaving, catching up, errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

import mosaik

from waiting import until

# Fast elections; heartbeat_interval keeps mosaik's 0.5 s (it is in the group id),
# and followers wait longer than one heartbeat before they stand.
FAST = mosaik.ConsensusConfig(
    bootstrap_delay=0.5, election_timeout=0.6, election_timeout_jitter=0.3
)
NOOP_GROUP_ID = "2f3948c78d20f9c6b5486a51b426137f90f2c3e935d3d21ce2537b7555fa8f03"


class Counter(mosaik.StateMachine):
    """Adds i64 commands to a total; remembers every (index, command) it applied."""

    signature = "counter-v1"
    command_codec = "i64"
    query_codec = "()"
    result_codec = "i64"

    def __init__(self) -> None:
        self.total = 0
        self.seen: list[tuple[int, int]] = []

    def apply(self, command: int, ctx: mosaik.ApplyContext) -> None:
        self.total += command
        self.seen.append((ctx.index, command))

    def query(self, query: None) -> int:
        return self.total


class OtherCounter(Counter):
    signature = "counter-v2"


class NamedCounter(Counter):
    type_name = "my_app::Counter"


class Picky(Counter):
    """Refuses negative commands by raising."""

    signature = "picky-v1"

    def apply(self, command: int, ctx: mosaik.ApplyContext) -> None:
        if command < 0:
            raise ValueError(f"negative command {command}")
        super().apply(command, ctx)


def counter(group: mosaik.Group) -> Counter:
    machine = group.machine
    assert isinstance(machine, Counter)
    return machine


@asynccontextmanager
async def nodes(name: str, n: int) -> AsyncIterator[list[mosaik.Network]]:
    """``n`` nodes of network ``name`` that all know each other; closed together."""
    nets: list[mosaik.Network] = []
    try:
        nets.append(await mosaik.Network.create(name, local=True))
        for _ in range(n - 1):
            nets.append(await mosaik.Network.create(name, local=True, bootstrap=[nets[0].address]))
        await asyncio.gather(*(x.discovery.wait_for_peers(n - 1, timeout=15) for x in nets))
        yield nets
    finally:
        await asyncio.gather(*(x.close() for x in nets))


def join_all(
    nets: Sequence[mosaik.Network],
    key: str,
    machine: type[Counter] | None = Counter,
    consensus: mosaik.ConsensusConfig = FAST,
) -> list[mosaik.Group]:
    return [
        x.groups.join(key, None if machine is None else machine(), consensus=consensus)
        for x in nets
    ]


async def close_all(groups: Sequence[mosaik.Group]) -> None:
    await asyncio.gather(*(g.close() for g in groups))


async def agreed_leader(groups: Sequence[mosaik.Group], timeout: float = 10.0) -> str:
    """The leader once every member names the same one and exactly one leads."""

    def agreed() -> bool:
        leaders = {g.leader for g in groups}
        return len(leaders) == 1 and None not in leaders and sum(g.is_leader for g in groups) == 1

    await until(agreed, timeout=timeout, what="every member to name one leader")
    leader = groups[0].leader
    assert leader is not None
    return leader


async def all_online(groups: Sequence[mosaik.Group], timeout: float = 10.0) -> None:
    await asyncio.wait_for(asyncio.gather(*(g.when.online() for g in groups)), timeout)


async def applied(group: mosaik.Group, index: int, timeout: float = 10.0) -> None:
    """Waits until the member's machine applied the command at ``index``."""
    await asyncio.wait_for(group.when.committed(index), timeout)
    seen = counter(group).seen
    await until(
        lambda: bool(seen) and seen[-1][0] >= index,
        timeout=timeout,
        what=f"the machine to apply index {index}",
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", [1, 3, 5, 7])
async def test_every_member_agrees_on_one_leader(size: int) -> None:
    async with nodes(f"groups-elect-{size}", size) as nets:
        groups = join_all(nets, "elect-secret")
        try:
            leader = await agreed_leader(groups, timeout=15)
            peer_ids = [x.peer_id for x in nets]
            assert leader in peer_ids
            leading = groups[peer_ids.index(leader)]
            assert leading.is_leader
            await asyncio.wait_for(leading.when.is_leader(), 1)
            for g in groups:
                await asyncio.wait_for(g.when.leader_is(leader), 1)
                if g is not leading:
                    await asyncio.wait_for(g.when.is_follower(), 1)

            def fully_bonded() -> bool:
                return all(
                    g.bonds == frozenset(peer_ids) - {x.peer_id} for x, g in zip(nets, groups)
                )

            await until(fully_bonded, what="every member to bond with every other one")
            assert len({g.group_id for g in groups}) == 1
        finally:
            await close_all(groups)


async def test_a_lone_member_leads_itself() -> None:
    async with nodes("groups-alone", 1) as (net,):
        async with net.groups.join("alone-secret", Counter(), consensus=FAST) as g:
            assert await asyncio.wait_for(g.when.leader_elected(), 10) == net.peer_id
            assert g.is_leader and g.leader == net.peer_id and g.bonds == frozenset()
            await asyncio.wait_for(g.when.online(), 5)
            assert g.is_online
            assert g.status.role == "leader" and g.status.term >= 1
            assert await g.execute(3) >= 1 and counter(g).total == 3


async def test_the_group_id_is_mosaiks_and_only_shared_parameters_change_it() -> None:
    async def group_id(net: mosaik.Network, machine: Counter | None, **consensus: Any) -> str:
        async with net.groups.join(
            "demo-group-secret", machine, consensus=mosaik.ConsensusConfig(**consensus)
        ) as g:
            return g.group_id

    async with nodes("groups-ids", 1) as (net,):
        noop = await group_id(net, None)
        assert noop == NOOP_GROUP_ID
        counter_id = await group_id(net, Counter())
        assert len(counter_id) == 64 and counter_id != noop
        # The machine's signature and type name (the catch-up protocol) count ...
        assert await group_id(net, OtherCounter()) not in (noop, counter_id)
        assert await group_id(net, NamedCounter()) not in (noop, counter_id)
        # ... and so do the three heartbeat parameters ...
        assert await group_id(net, None, heartbeat_interval=0.6) != noop
        assert await group_id(net, None, heartbeat_jitter=0.2) != noop
        assert await group_id(net, None, max_missed_heartbeats=5) != noop
        # ... but local timers and rules do not.
        local = {
            "election_timeout": 0.7,
            "election_timeout_jitter": 0.1,
            "bootstrap_delay": 0.1,
            "forward_timeout": 1.0,
            "query_timeout": 1.0,
            "quorum": 2,
        }
        assert await group_id(net, None, **local) == noop
        assert await group_id(net, Counter(), **local) == counter_id


@pytest.mark.timeout(60)
async def test_commands_from_every_member_apply_in_one_order_everywhere() -> None:
    async with nodes("groups-order", 3) as nets:
        groups = join_all(nets, "order-secret")
        try:
            await agreed_leader(groups)
            await all_online(groups)

            async def issue(m: int, g: mosaik.Group) -> list[tuple[int, int]]:
                done = []
                for k in range(10):
                    command = 1000 * m + k
                    done.append((await g.execute(command), command))
                batch = [1000 * m + k for k in range(10, 15)]
                done += zip(await g.execute_many(batch), batch)
                return done

            runs = await asyncio.wait_for(
                asyncio.gather(*(issue(m, g) for m, g in enumerate(groups))), 30
            )
            executed = [pair for run in runs for pair in run]
            last = max(index for index, _ in executed)
            for g in groups:
                await applied(g, last)
            reference = counter(groups[0]).seen
            assert len(reference) == len(executed) == 45
            for g in groups[1:]:
                assert counter(g).seen == reference
            # Every execute's index is where its command sits, on every member.
            assert sorted(executed) == sorted(reference)
            indices = [index for index, _ in reference]
            assert indices == sorted(set(indices))
            assert {g.committed >= last for g in groups} == {True}
        finally:
            await close_all(groups)


@pytest.mark.timeout(60)
async def test_execute_returns_after_the_local_apply_and_feed_once_indexed() -> None:
    async with nodes("groups-execute", 2) as nets:
        groups = join_all(nets, "execute-secret")
        try:
            await agreed_leader(groups)
            await all_online(groups)
            follower = next(g for g in groups if not g.is_leader)
            for g in (follower, *(g for g in groups if g is not follower)):
                seen = counter(g).seen
                index = await g.execute(7)
                assert seen[-1] == (index, 7), "applied here before execute returned"
                assert g.committed >= index and g.log_position[1] >= index

                indices = await g.execute_many([1, 2, 3])
                assert isinstance(indices, range) and indices.step == 1
                assert len(indices) == 3 and indices[0] > index
                assert seen[-3:] == list(zip(indices, [1, 2, 3]))

                fed = await g.feed(4)
                assert isinstance(fed, int) and fed > indices[-1]
                fed_many = await g.feed_many([5, 6])
                assert isinstance(fed_many, range) and len(fed_many) == 2
                assert fed_many[0] > fed
                await applied(g, fed_many[-1])
                assert seen[-3:] == [(fed, 4), (fed_many[0], 5), (fed_many[1], 6)]
            for g in groups:
                await applied(g, fed_many[-1])
                assert counter(g).total == 2 * 28
        finally:
            await close_all(groups)


@pytest.mark.timeout(60)
async def test_a_strong_query_reflects_every_returned_execute_and_a_weak_one_is_local() -> None:
    async with nodes("groups-query", 3) as nets:
        groups = join_all(nets, "query-secret")
        try:
            leader_id = await agreed_leader(groups)
            await all_online(groups)
            leader = next(g for g in groups if g.is_leader)
            followers = [g for g in groups if g is not leader]
            expected = 0
            for k in range(12):
                await groups[k % 3].execute(k + 1)
                expected += k + 1
                asker = groups[(k + 1) % 3]  # never the member that executed
                assert await asker.query(None, consistency="strong") == expected
            for g in followers:
                assert await g.query(None, consistency="strong") == counter(leader).total
                assert g.leader == leader_id
            for g in groups:
                # Weak: this member's own state, whatever it has applied so far.
                assert await g.query(None) == counter(g).total
                assert await g.query(None, consistency="weak") == counter(g).total
        finally:
            await close_all(groups)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["group", "network"])
async def test_when_the_leader_leaves_the_others_elect_another_and_go_on(how: str) -> None:
    async with nodes(f"groups-leave-{how}", 3) as nets:
        groups = join_all(nets, "leave-secret")
        try:
            old = await agreed_leader(groups)
            await all_online(groups)
            await groups[0].execute_many([1, 2, 3])
            leaving = next(i for i, x in enumerate(nets) if x.peer_id == old)
            rest = [g for i, g in enumerate(groups) if i != leaving]
            started = time.monotonic()
            if how == "group":
                await groups[leaving].close()
            else:
                await nets[leaving].close()
            new = await agreed_leader(rest, timeout=5)
            assert new != old
            assert time.monotonic() - started < 5
            await all_online(rest, timeout=5)
            for value, g in enumerate(rest, start=10):
                await asyncio.wait_for(g.execute(value), 5)
            for g in rest:
                assert await g.query(None, consistency="strong") == 6 + 10 + 11
        finally:
            await close_all(groups)


@pytest.mark.timeout(60)
async def test_a_late_joiner_catches_up_on_the_whole_log() -> None:
    async with nodes("groups-late", 2) as nets:
        groups = join_all(nets, "late-secret")
        try:
            await agreed_leader(groups)
            await all_online(groups)
            await groups[0].execute_many(range(1, 26))
            for k in range(26, 51):
                await groups[k % 2].execute(k)
            assert counter(groups[0]).total == sum(range(1, 51))
            async with mosaik.Network.create(
                "groups-late", local=True, bootstrap=[nets[0].address]
            ) as late_net:
                await late_net.discovery.wait_for_peers(2, timeout=15)
                late = late_net.groups.join("late-secret", Counter(), consensus=FAST)
                try:
                    await agreed_leader([*groups, late])
                    await until(
                        lambda: counter(late).total == sum(range(1, 51)),
                        timeout=15,
                        what="the late joiner to replay the log",
                    )
                    assert counter(late).seen == counter(groups[0]).seen
                    # Now a full member: its own command reaches everyone.
                    index = await asyncio.wait_for(late.execute(100), 10)
                    for g in groups:
                        await applied(g, index)
                        assert counter(g).seen == counter(late).seen
                finally:
                    await late.close()
        finally:
            await close_all(groups)


@pytest.mark.timeout(60)
async def test_a_raising_apply_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="mosaik.groups")
    async with nodes("groups-raise", 2) as nets:
        groups = join_all(nets, "raise-secret", Picky)
        try:
            await agreed_leader(groups)
            await all_online(groups)
            follower = next(g for g in groups if not g.is_leader)
            await follower.execute(1)
            bad = await follower.execute(-5)  # committed, but no effect
            last = await follower.execute(2)
            for g in groups:
                await applied(g, last)
                assert counter(g).total == 3
                assert [c for _, c in counter(g).seen] == [1, 2]
            raised = [
                r
                for r in caplog.records
                if r.name == "mosaik.groups" and f"command {bad}" in r.getMessage()
            ]
            assert len(raised) == len(groups), "logged once on every member"
            for record in raised:
                assert record.levelno == logging.ERROR and record.exc_info is not None
                assert isinstance(record.exc_info[1], ValueError)
                assert "negative command -5" in str(record.exc_info[1])
        finally:
            await close_all(groups)


@pytest.mark.timeout(30)
async def test_without_a_reachable_leader_commands_and_strong_queries_raise_offline() -> None:
    lonely = mosaik.ConsensusConfig(
        quorum=2,
        bootstrap_delay=0.2,
        election_timeout=0.6,
        election_timeout_jitter=0.1,
        forward_timeout=1.0,
        query_timeout=1.0,
    )
    async with nodes("groups-offline", 1) as (net,):
        async with net.groups.join("offline-secret", Counter(), consensus=lonely) as g:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(g.when.leader_elected(), 2.0)  # it never leads alone
            assert g.leader is None and not g.is_leader and not g.is_online

            async def offline(call: Any) -> mosaik.Offline:
                started = time.monotonic()
                with pytest.raises(mosaik.Offline) as raised:
                    await asyncio.wait_for(call, lonely.forward_timeout + 3)
                assert time.monotonic() - started < lonely.forward_timeout + 1
                return raised.value

            assert (await offline(g.execute(5))).command == 5  # type: ignore[attr-defined]
            assert (await offline(g.execute_many([1, 2]))).command == [1, 2]  # type: ignore[attr-defined]
            assert (await offline(g.feed(6))).command == 6  # type: ignore[attr-defined]
            strong = await offline(g.query(None, consistency="strong"))
            assert strong.query is None  # type: ignore[attr-defined]
            assert await g.query(None) == 0  # weak: the local state, no leader needed
            assert counter(g).seen == [] and g.committed == 0


@pytest.mark.timeout(30)
async def test_a_closed_group_raises_closed() -> None:
    async with nodes("groups-closed", 1) as (net,):
        g = net.groups.join("closed-secret", Counter(), consensus=FAST)
        await asyncio.wait_for(g.when.online(), 10)
        await g.execute(1)
        await g.close()
        await g.close()  # idempotent
        for call in (
            g.execute(2),
            g.execute_many([2, 3]),
            g.feed(2),
            g.query(None),
            g.query(None, consistency="strong"),
        ):
            with pytest.raises(mosaik.Closed):
                await asyncio.wait_for(call, 5)
        assert counter(g).total == 1

        async with net.groups.join("closed-secret", Counter(), consensus=FAST) as again:
            # Closing freed the key: it can be joined again on this node.
            await asyncio.wait_for(again.when.online(), 10)
            assert await again.execute(4) >= 1
        with pytest.raises(mosaik.Closed):
            await asyncio.wait_for(again.execute(5), 5)
        with pytest.raises(mosaik.Closed):
            await again.query(None)


@pytest.mark.timeout(30)
async def test_waiting_on_a_closed_group_raises_closed() -> None:
    async with nodes("groups-closed-when", 1) as (net,):
        g = net.groups.join("closed-when-secret", consensus=FAST)
        await asyncio.wait_for(g.when.online(), 10)
        await g.close()
        with pytest.raises(mosaik.Closed):
            await asyncio.wait_for(g.when.committed(1_000), 3)


@pytest.mark.timeout(30)
async def test_bad_arguments_are_refused_before_anything_is_sent() -> None:
    async with nodes("groups-args", 1) as (net,):
        with pytest.raises(TypeError, match=r"^key\b"):
            net.groups.join(123)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^machine\b"):
            net.groups.join("k", machine=object())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^consensus\b"):
            net.groups.join("k", consensus={"quorum": 2})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"^consensus\.heartbeat_jitter\b"):
            mosaik.ConsensusConfig(heartbeat_jitter=0.6)
        with pytest.raises(ValueError, match=r"^consensus\.quorum\b"):
            mosaik.ConsensusConfig(quorum=0)

        async with net.groups.join("args-secret", Counter(), consensus=FAST) as g:
            await asyncio.wait_for(g.when.online(), 10)
            position = g.log_position
            with pytest.raises(TypeError):
                await g.execute("five")
            with pytest.raises(TypeError):
                await g.execute_many([1, "two"])  # all or nothing: 1 is not sent either
            with pytest.raises(TypeError):
                await g.feed(1.5)
            with pytest.raises(ValueError, match=r"^commands\b"):
                await g.execute_many([])
            with pytest.raises(ValueError, match=r"^consistency\b"):
                await g.query(None, consistency="bogus")  # type: ignore[arg-type]
            with pytest.raises(ValueError, match=r"^key\b.*already"):
                net.groups.join("args-secret", Counter(), consensus=FAST)
            assert g.log_position == position and counter(g).seen == []
            assert await g.execute(1) == position[1] + 1  # the group is fine


async def test_a_command_of_the_wrong_type_is_named() -> None:
    async with nodes("groups-args-name", 1) as (net,):
        async with net.groups.join("args-name-secret", Counter(), consensus=FAST) as g:
            with pytest.raises(TypeError, match=r"^command\b"):
                await g.execute("five")


@pytest.mark.timeout(30)
async def test_a_noop_group_orders_empty_commands() -> None:
    async with nodes("groups-noop", 1) as (net,):
        async with net.groups.join("noop-secret", consensus=FAST) as g:
            assert g.machine is None
            await asyncio.wait_for(g.when.online(), 10)
            first = await g.execute()
            second = await g.execute()
            more = await g.execute_many([None, None])
            assert first < second < more[0] and len(more) == 2
            assert g.committed >= more[-1]
            assert await g.query() is None
            assert await g.query(None, consistency="strong") is None
