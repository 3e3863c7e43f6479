"""A stream a Rust mosaik node can share: Rust's `produce::<String>()` names
its stream by the Rust type name and sends postcard-encoded strings (a
varint length, then the UTF-8 bytes), which the `"str"` codec reads and
writes. tests/interop checks this against the real crate."""

import asyncio

import mosaik

RUST_STRING = "alloc::string::String"  # the stream id of a Rust `produce::<String>()`


async def main() -> None:
    async with (
        mosaik.Network.create("rust-compatible", local=True) as a,
        mosaik.Network.create("rust-compatible", local=True, bootstrap=[a.address]) as b,
    ):
        producer = a.streams.producer(RUST_STRING, codec="str")
        consumer = b.streams.consumer(RUST_STRING, codec="str")
        await asyncio.wait_for(producer.when.online(), 20)
        await producer.send("hello from Python")
        print(await asyncio.wait_for(consumer.recv(), 20) == "hello from Python")  # True


asyncio.run(main())
