"""Groups: a replicated key-value machine, the member's view, and NoOp groups."""

import asyncio
from typing import Any

import mosaik


# --8<-- [start:machine]
class Registry(mosaik.StateMachine):
    signature = "registry-v1"  # feeds the group id: every member must agree
    # commands, queries and results use "json" unless told otherwise

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> None:
        name, owner = command  # must depend only on the state and the command
        self.names.setdefault(name, owner)

    def query(self, query: Any) -> Any:
        return self.names.get(query)


# --8<-- [end:machine]


async def main() -> None:
    async with (
        mosaik.Network.create("my-app", local=True) as a,
        mosaik.Network.create("my-app", local=True, bootstrap=[a.address]) as b,
        mosaik.Network.create("my-app", local=True, bootstrap=[a.address]) as c,
    ):
        # --8<-- [start:join]
        consensus = mosaik.ConsensusConfig(bootstrap_delay=1.0, quorum=2)  # 2 of 3 bonded
        members = [
            net.groups.join("registry-secret", Registry(), consensus=consensus) for net in (a, b, c)
        ]
        leader = await members[0].when.leader_elected()
        print(all(m.group_id == members[0].group_id for m in members))  # True
        print(leader in {a.peer_id, b.peer_id, c.peer_id})  # True
        # --8<-- [end:join]

        # --8<-- [start:write]
        index = await members[1].execute(["alice", b.peer_id])  # committed and applied here
        await members[2].when.committed(index)  # c's committed index reached it
        fed = await members[2].feed(["alice", c.peer_id])  # the leader gave it an index
        print(fed > index)  # True
        owner = await members[2].query("alice", consistency="strong")  # the leader's state
        print(owner == b.peer_id)  # True: the first claim won, on every member
        # --8<-- [end:write]

        # --8<-- [start:status]
        g = members[0]
        print(g.is_online, len(g.bonds), g.committed >= index)  # True 2 True
        term, last = g.log_position
        print(term >= 1, last >= fed)  # True True
        # --8<-- [end:status]

        # --8<-- [start:noop]
        async with a.groups.join("just-a-leader") as noop:  # no machine: mosaik's NoOp
            print(noop.machine is None)  # True
        # --8<-- [end:noop]

        for m in members:
            await m.close()


asyncio.run(main())
