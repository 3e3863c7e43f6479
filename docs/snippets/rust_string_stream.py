"""The stream a Rust `produce::<String>()` publishes, met from Python."""

import asyncio

import mosaik


async def main() -> None:
    # --8<-- [start:string]
    async with (
        mosaik.Network.create("my-app", local=True) as a,
        mosaik.Network.create("my-app", local=True, bootstrap=[a.address]) as b,
    ):
        # A Rust node's `network.streams().produce::<String>()` publishes the stream
        # named by the Rust type name; `consume::<String>()` subscribes to it.
        p = a.streams.producer("alloc::string::String", codec="str")
        c = b.streams.consumer("alloc::string::String", codec="str")
        await c.when.subscribed(1)
        await p.send("hello from Python")
        print(await c.recv())  # hello from Python
        print(p.stream_id == mosaik.id_of("alloc::string::String").hex())  # True
    # --8<-- [end:string]


asyncio.run(main())
