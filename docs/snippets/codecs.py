"""Codecs: built-in names, Rust type names, and a codec object of your own."""

import asyncio
import pickle
from typing import Any

import mosaik


# --8<-- [start:custom]
class PickleCodec:
    """Any object with encode/decode is a codec (Python peers only: Rust can't read it)."""

    def encode(self, obj: Any) -> bytes:
        return pickle.dumps(obj)

    def decode(self, buf: bytes) -> Any:
        return pickle.loads(buf)


# --8<-- [end:custom]


async def main() -> None:
    async with (
        mosaik.Network.create("my-app", local=True) as a,
        mosaik.Network.create("my-app", local=True, bootstrap=[a.address]) as b,
    ):
        # --8<-- [start:rust-types]
        p = a.streams.producer("readings", codec="u64")  # a Rust u64 stream
        c = b.streams.consumer("readings", codec="u64")
        await c.when.subscribed(1)
        await p.send(2**40)
        print(await c.recv())  # 1099511627776
        # --8<-- [end:rust-types]

        # --8<-- [start:use-custom]
        p2 = a.streams.producer("objects", codec=PickleCodec())
        c2 = b.streams.consumer("objects", codec=PickleCodec())
        await c2.when.subscribed(1)
        await p2.send({1, 2, 3})
        print(await c2.recv())  # {1, 2, 3}
        # --8<-- [end:use-custom]


asyncio.run(main())
