"""Networks and discovery: three local nodes meet, tag, and see one leave."""

import asyncio

import mosaik


async def main() -> None:
    # --8<-- [start:meet]
    async with (
        mosaik.Network.create("my-app", local=True, tags=("api",)) as a,
        mosaik.Network.create("my-app", local=True, bootstrap=[a.address]) as b,
        mosaik.Network.create("my-app", local=True, bootstrap=[a.address]) as c,
    ):
        peers = await c.discovery.wait_for_peers(2, timeout=10)  # list[PeerInfo]
        print(sorted(p.peer_id for p in peers) == sorted([a.peer_id, b.peer_id]))  # True
        print(a.network_id == mosaik.id_of("my-app").hex())  # True
        # --8<-- [end:meet]

        # --8<-- [start:tags]
        api = [p for p in c.discovery.peers() if p.has_tag("api")]
        print([p.peer_id for p in api] == [a.peer_id])  # True: tags are hex ids on the wire
        await b.discovery.add_tags("worker")  # re-signed and announced at once
        await c.discovery.sync_with(b.address)  # or wait for the gossip
        print(any(p.has_tag("worker") for p in c.discovery.peers()))  # True
        # --8<-- [end:tags]

        # --8<-- [start:events]
        events = c.discovery.events()  # subscribes now

        async def first_departure() -> mosaik.DiscoveryEvent:
            async for event in events:
                if event.kind == "departed":
                    return event
            raise AssertionError("the node closed first")

        watcher = asyncio.create_task(first_departure())
        await asyncio.sleep(0)  # let the watcher start
        await b.close()  # graceful: b says goodbye first
        event = await asyncio.wait_for(watcher, timeout=10)
        print(event.peer.peer_id == b.peer_id)  # True
        # --8<-- [end:events]


asyncio.run(main())
