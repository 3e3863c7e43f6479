"""A replicated counter: three members, one state (README "Groups")."""

import asyncio

import mosaik


class Counter(mosaik.StateMachine):
    signature = "counter-v1"  # feeds the group id, as a Rust machine's signature()
    command_codec = "i64"  # commands are Rust i64s on the wire

    def __init__(self) -> None:
        self.total = 0

    def apply(self, command: int, ctx: mosaik.ApplyContext) -> None:
        self.total += command

    def query(self, query: object) -> int:
        return self.total


async def main() -> None:
    async with (
        mosaik.Network.create("my-app", local=True) as a,
        mosaik.Network.create("my-app", local=True, bootstrap=[a.address]) as b,
        mosaik.Network.create("my-app", local=True, bootstrap=[a.address]) as c,
    ):
        fast = mosaik.ConsensusConfig(bootstrap_delay=1.0)  # mosaik waits 3 s for peers to bond
        groups = [net.groups.join("team-secret", Counter(), consensus=fast) for net in (a, b, c)]
        await asyncio.gather(*(g.when.leader_elected() for g in groups))
        for i, group in enumerate(groups):  # any member may write; followers forward
            await group.execute(10 * (i + 1))
        total = await groups[2].query(consistency="strong")  # the leader's state
        print(total, total == 60)  # 60 True


asyncio.run(main())
