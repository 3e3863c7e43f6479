"""Tickets: only holders of a valid JWT may subscribe (README "Tickets")."""

import asyncio
import os

import mosaik


async def main() -> None:
    secret = os.urandom(32)  # shared by whoever issues and checks tickets
    issuer = mosaik.JwtIssuer.hs256(secret, issuer="my-app")
    jwt = mosaik.Jwt.hs256(secret, issuers=("my-app",), claims={"role": "reader"})
    async with (
        mosaik.Network.create("my-app", local=True) as a,
        mosaik.Network.create("my-app", local=True, bootstrap=[a.address]) as b,
    ):
        token = issuer.issue(subject=b.peer_id, expires_in=3600, claims={"role": "reader"})
        await b.discovery.add_ticket(token)  # re-signed and announced at once
        p = a.streams.producer("orders", codec="str", require_ticket=jwt)  # 10403 for the rest
        c = b.streams.consumer("orders", codec="str")
        await c.when.subscribed(1)
        await p.send("for ticket holders")
        print(await c.recv())  # for ticket holders
        print(jwt.validate(token, b.peer_id) is not None)  # True: expires in an hour


asyncio.run(main())
