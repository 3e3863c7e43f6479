"""Tickets as a user sees them: attached to a node's signed entry, seen by its
peers, and (with a validator) gating streams and groups."""

from __future__ import annotations

import asyncio
import time

import pytest

import mosaik

from test_discovery import next_event
from waiting import until

JWT_CLASS_ID = "4586eafab50d29f2ad5212e08f84d0a789cd6a565ce8d344652b1b7b60973d8c"
TDX_CLASS_ID = "0df6ed8500424a32854ef0a1b86ea7d41ef1a929b55e26023b045c91a38c44d0"


async def test_tickets_ride_the_signed_entry_to_peers() -> None:
    async with mosaik.Network.create("tickets-entry", local=True) as a:
        events = a.discovery.events()
        async with mosaik.Network.create("tickets-entry", local=True, bootstrap=[a.address]) as b:
            await next_event(events, "discovered", b.peer_id)
            first = await b.discovery.add_ticket("header.claims.sig")
            assert len(first) == 64
            assert await b.discovery.add_ticket("header.claims.sig") == first, "idempotent"
            seen = await next_event(
                events, "updated", b.peer_id, where=lambda p: len(p.tickets) == 1
            )
            (ticket,) = seen.peer.tickets
            assert (ticket.id, ticket.class_id, ticket.kind) == (first, JWT_CLASS_ID, "jwt")
            assert ticket.token == "header.claims.sig" and ticket.data == b"header.claims.sig"
            assert repr(ticket).startswith(f"<TicketInfo jwt {first[:10]}, 17 bytes>")

            other = await b.discovery.add_ticket(b"\x00opaque", ticket_class="my-app.ticket")
            quote = await b.discovery.add_ticket(b"\x28\xb5\x2f\xfd", ticket_class=TDX_CLASS_ID)
            seen = await next_event(
                events, "updated", b.peer_id, where=lambda p: len(p.tickets) == 3
            )
            kinds = {t.id: (t.kind, t.token) for t in seen.peer.tickets}
            assert kinds == {
                first: ("jwt", "header.claims.sig"),
                other: ("other", None),
                quote: ("tdx", None),  # recognised, shown opaque: nothing here checks quotes
            }
            assert await b.discovery.remove_ticket(quote)

            # A renewal swaps every JWT for the new one in one entry.
            renewed = await b.discovery.replace_ticket("header.claims.sig2")
            seen = await next_event(
                events,
                "updated",
                b.peer_id,
                where=lambda p: {t.id for t in p.tickets} == {renewed, other},
            )
            assert await b.discovery.remove_ticket(renewed)
            assert not await b.discovery.remove_ticket(renewed), "already gone"
            await next_event(
                events, "updated", b.peer_id, where=lambda p: [t.id for t in p.tickets] == [other]
            )
            assert [t.id for t in b.discovery.me().tickets] == [other]


async def test_bad_tickets_are_refused_with_the_argument_named() -> None:
    async with mosaik.Network.create("tickets-bad", local=True) as net:
        with pytest.raises(TypeError, match="token"):
            await net.discovery.add_ticket(42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="token"):
            await net.discovery.add_ticket("")
        with pytest.raises(ValueError, match="token: 1048576 bytes"):
            await net.discovery.add_ticket("x" * (1 << 20))
        with pytest.raises(TypeError, match="ticket_class"):
            await net.discovery.add_ticket("a.b.c", ticket_class=1)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="ticket_id"):
            await net.discovery.remove_ticket("not-an-id")
        assert net.discovery.me().tickets == ()


SECRET = bytes(range(32))


async def test_a_gated_producer_serves_ticket_holders_until_the_ticket_expires() -> None:
    issuer = mosaik.JwtIssuer.hs256(SECRET, issuer="my-app")
    jwt = mosaik.Jwt.hs256(SECRET, issuers=("my-app",), claims={"role": "reader"})
    async with (
        mosaik.Network.create("tickets-stream", local=True) as a,
        mosaik.Network.create("tickets-stream", local=True, bootstrap=[a.address]) as b,
    ):
        producer = a.streams.producer("orders", codec="str", require_ticket=jwt)
        # Right key and subject, but the claim the producer requires is missing.
        wrong = issuer.issue(subject=b.peer_id, expires_in=60)
        wrong_id = await b.discovery.add_ticket(wrong)
        consumer = b.streams.consumer("orders", codec="str")
        await until(
            lambda: any(wrong_id in {t.id for t in p.tickets} for p in a.discovery.peers()),
            what="the producer sees the ticket",
        )
        assert not producer.is_online

        # A valid ticket: the consumer tries again on its own entry change.
        expires_in = 3
        token = issuer.issue(subject=b.peer_id, expires_in=expires_in, claims={"role": "reader"})
        issued = time.time()
        await b.discovery.replace_ticket(token)
        await asyncio.wait_for(producer.when.subscribed(), 10)
        await producer.send("welcome")
        assert await asyncio.wait_for(consumer.recv(), 10) == "welcome"

        # The ticket's exp is whole seconds: the subscription ends within a
        # second of it, not before.
        expiry = int(issued) + expires_in
        await until(lambda: not producer.consumers, timeout=expires_in + 5, what="expiry")
        ended = time.time()
        assert producer.refusals["ticket_revoked"] == 1
        assert expiry - 0.05 <= ended < expiry + 1.0, (ended, expiry)


async def test_a_gated_producer_refuses_every_kind_of_bad_ticket() -> None:
    issuer = mosaik.JwtIssuer.hs256(SECRET, issuer="my-app")
    stranger = mosaik.JwtIssuer.hs256(bytes(32), issuer="my-app")
    jwt = mosaik.Jwt.hs256(SECRET, issuers=("my-app",), claims={"role": "reader"})
    role = {"role": "reader"}
    async with (
        mosaik.Network.create("tickets-refusals", local=True) as a,
        mosaik.Network.create("tickets-refusals", local=True, bootstrap=[a.address]) as b,
    ):
        now = int(time.time())
        bad = {
            "signed by another key": stranger.issue(subject=b.peer_id, expires_in=60, claims=role),
            "expired": issuer.issue(subject=b.peer_id, expires_at=now - 5, claims=role),
            "not yet valid": issuer.issue(
                subject=b.peer_id, expires_in=60, not_before=now + 3600, claims=role
            ),
            "for another subject": issuer.issue(subject=a.peer_id, expires_in=60, claims=role),
            "missing the claim": issuer.issue(subject=b.peer_id, expires_in=60),
            "never expiring": issuer.issue(subject=b.peer_id, claims=role),
        }
        producer = a.streams.producer("orders", codec="str", require_ticket=jwt)
        quick = mosaik.Backoff(initial=0.05, max_delay=0.2)
        consumer = b.streams.consumer("orders", codec="str", backoff=quick)

        def refused() -> int:
            return producer.refusals.get("ticket", 0)

        await until(lambda: refused() >= 1, timeout=10, what="a refusal without a ticket")
        for why, token in bad.items():
            before = refused()
            await b.discovery.replace_ticket(token)  # the consumer asks again
            await until(
                lambda before=before: refused() > before,  # type: ignore[misc]
                timeout=10,
                what=f"a ticket {why} refused",
            )
            assert not producer.consumers, why
        await b.discovery.replace_ticket(
            issuer.issue(subject=b.peer_id, expires_in=60, claims=role)
        )
        await asyncio.wait_for(producer.when.subscribed(), 10)
        await producer.send("at last")
        assert await asyncio.wait_for(consumer.recv(), 10) == "at last"
        assert "ticket_revoked" not in producer.refusals


async def test_a_thousand_forged_tickets_cost_a_bounded_check() -> None:
    jwt = mosaik.Jwt.hs256(SECRET, issuers=("my-app",))
    forger = mosaik.JwtIssuer.hs256(bytes(32), issuer="my-app")
    async with (
        mosaik.Network.create("tickets-stuffed", local=True) as a,
        mosaik.Network.create("tickets-stuffed", local=True, bootstrap=[a.address]) as b,
    ):
        for i in range(1000):
            await b.discovery.add_ticket(forger.issue(subject=b.peer_id, expires_in=600 + i))
        assert len(b.discovery.me().tickets) == 1000
        await a.discovery.sync_with(b.address)  # too big to gossip: a sync carries it
        (seen,) = a.discovery.peers()
        assert len(seen.tickets) == 1000
        producer = a.streams.producer("orders", require_ticket=jwt)
        open_stream = a.streams.producer("public", codec="str")
        gated = b.streams.consumer("orders")
        honest = b.streams.consumer("public", codec="str")
        started = time.monotonic()
        await until(lambda: producer.refusals.get("ticket", 0) >= 1, what="the refusal")
        assert time.monotonic() - started < 5
        await asyncio.wait_for(open_stream.when.subscribed(), 10)
        await open_stream.send("still serving")
        assert await asyncio.wait_for(honest.recv(), 10) == "still serving"
        await until(lambda: gated.producers == [], what="the refused consumer to give up")
        assert not producer.consumers


async def test_members_without_a_valid_ticket_never_bond() -> None:
    issuer = mosaik.JwtIssuer.generate("EdDSA", issuer="ops")
    public_key = issuer.public_key
    assert public_key is not None
    jwt = mosaik.Jwt.eddsa(public_key, issuers=("ops",))
    fast = mosaik.ConsensusConfig(
        bootstrap_delay=0.3, election_timeout=0.6, election_timeout_jitter=0.3
    )
    async with mosaik.Network.create("tickets-group", local=True) as a:
        async with (
            mosaik.Network.create("tickets-group", local=True, bootstrap=[a.address]) as b,
            mosaik.Network.create("tickets-group", local=True, bootstrap=[a.address]) as outsider,
        ):
            for net in (a, b):
                await net.discovery.add_ticket(issuer.issue(subject=net.peer_id, expires_in=600))
            # The outsider holds a token for someone else.
            await outsider.discovery.add_ticket(issuer.issue(subject=a.peer_id, expires_in=600))
            await asyncio.wait_for(
                asyncio.gather(*(n.discovery.wait_for_peers(2) for n in (a, b, outsider))), 10
            )
            members = [
                n.groups.join("team", consensus=fast, require_ticket=[jwt])
                for n in (a, b, outsider)
            ]
            open_group = a.groups.join("team", consensus=fast)
            try:
                assert len({g.group_id for g in members}) == 1
                assert open_group.group_id != members[0].group_id
                await asyncio.wait_for(asyncio.gather(*(g.when.online() for g in members[:2])), 15)
                await members[0].execute(None)
                await until(
                    lambda: (
                        a.groups.rejections.get("not_allowed", 0)
                        + b.groups.rejections.get("not_allowed", 0)
                        >= 1
                    ),
                    timeout=10,
                    what="the outsider refused",
                )
                assert members[2].bonds == frozenset()
                # (a pair that dialed each other at once may re-dial: wait for it)
                await until(
                    lambda: members[0].bonds == {b.peer_id} and members[1].bonds == {a.peer_id},
                    what="the ticket holders' bond",
                )
            finally:
                for group in (*members, open_group):
                    await group.close()


def test_require_ticket_takes_only_validators() -> None:
    async def check() -> None:
        async with mosaik.Network.create("tickets-args", local=True) as net:
            with pytest.raises(TypeError, match="require_ticket"):
                net.streams.producer("s", require_ticket="secret")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="require_ticket"):
                net.streams.consumer("s", require_ticket=[object()])  # type: ignore[list-item]
            with pytest.raises(TypeError, match="require_ticket"):
                net.groups.join("k", require_ticket=42)  # type: ignore[arg-type]

    asyncio.run(check())
