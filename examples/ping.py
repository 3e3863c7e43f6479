"""Two local nodes of one network; one pings the other and checks its signed entry."""

import asyncio

import mosaik


async def main() -> None:
    async with (
        mosaik.Network.create("my-app", local=True, tags=("api",)) as a,
        mosaik.Network.create("my-app", local=True, bootstrap=[a.address]) as b,
    ):
        peer = await b.discovery.ping(a.address)
        print(peer.peer_id == a.peer_id, peer.has_tag("api"))  # True True


asyncio.run(main())
