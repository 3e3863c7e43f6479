"""A Python machine that shares a group with the reference peer's Rust `Counter`."""

import asyncio

import mosaik


# --8<-- [start:machine]
class Counter(mosaik.StateMachine):
    signature = "counter-v1"  # the Rust signature(): UniqueId::from("counter-v1")
    type_name = "mosaik_interop_peer::groups::Counter"  # core::any::type_name::<Counter>()
    command_codec = "i64"  # type Command = i64
    query_codec = "()"  # type Query = ()
    result_codec = "i64"  # type QueryResult = i64

    def __init__(self) -> None:
        self.total = 0

    def apply(self, command: int, ctx: mosaik.ApplyContext) -> None:
        self.total += command  # the Rust side wraps on overflow; keep commands small

    def query(self, query: None) -> int:
        return self.total


# --8<-- [end:machine]


async def main() -> None:
    async with (
        mosaik.Network.create("interop", local=True) as a,
        mosaik.Network.create("interop", local=True, bootstrap=[a.address]) as b,
    ):
        fast = mosaik.ConsensusConfig(bootstrap_delay=1.0)
        ga = a.groups.join("team-secret", Counter(), consensus=fast)
        gb = b.groups.join("team-secret", Counter(), consensus=fast)
        await asyncio.gather(ga.when.leader_elected(), gb.when.leader_elected())
        await gb.execute(42)
        print(await ga.query(None, consistency="strong"))  # 42
        # The type name feeds the group id: another name is another group.
        print(ga.group_id == gb.group_id)  # True
        await ga.close()
        await gb.close()


asyncio.run(main())
