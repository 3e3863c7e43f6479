"""Streams: a producer, two consumers, and the ways to send and receive."""

import asyncio

import mosaik


async def main() -> None:
    async with (
        mosaik.Network.create("my-app", local=True) as a,
        mosaik.Network.create("my-app", local=True, bootstrap=[a.address]) as b,
        mosaik.Network.create("my-app", local=True, bootstrap=[a.address]) as c,
    ):
        # --8<-- [start:basic]
        p = a.streams.producer("sensors", codec="json")
        c1 = b.streams.consumer("sensors", codec="json")
        c2 = c.streams.consumer("sensors", codec="json")
        await p.when.subscribed(minimum=2)  # both consumers connected

        await p.send({"t": 21.5})  # waits while offline or full
        print(await c1.recv(), await c2.recv())  # {'t': 21.5} {'t': 21.5}
        # --8<-- [end:basic]

        # --8<-- [start:batch]
        sent = await p.send_many({"t": 20 + i} for i in range(1000))  # one crossing
        received = []
        while len(received) < sent:
            received += await c1.recv_batch(max_items=1024)  # >= 1 item each time
        print(sent, [r["t"] for r in received] == list(range(20, 1020)))  # 1000 True
        # --8<-- [end:batch]

        # --8<-- [start:iterate]
        count = 0
        async for item in c2:  # the same 1000 datums; ends when c2 is closed
            count += 1
            if item == {"t": 1019}:
                break
        print(count)  # 1000
        # --8<-- [end:iterate]
        # --8<-- [end:iterate]

        # --8<-- [start:status]
        [channel] = c1.producers  # list[ChannelInfo]: live channels
        print(channel.peer_id == a.peer_id, channel.state)  # True connected
        print(p.stats.datums, len(p.consumers), p.is_online)  # 1001 2 True
        print(p.stream_id == mosaik.id_of("sensors").hex())  # True
        # --8<-- [end:status]

        # --8<-- [start:errors]
        try:
            c1.try_recv()
        except mosaik.Empty:
            print("nothing ready")  # nothing ready
        await c1.close()  # leaves every producer; idempotent
        await c2.close()
        await b.close()
        await c.close()
        lonely = a.streams.producer("nobody-listens")
        try:
            lonely.try_send(b"hello")
        except mosaik.Offline as error:
            print(error.datum)  # b'hello': the unsent datum comes back
        # --8<-- [end:errors]


asyncio.run(main())
