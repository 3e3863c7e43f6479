"""Tickets as a user sees them: attached to a node's signed entry, seen by its
peers, and (with a validator) gating streams and groups."""

from __future__ import annotations

import pytest

import mosaik
from test_discovery import next_event

JWT_CLASS_ID = "4586eafab50d29f2ad5212e08f84d0a789cd6a565ce8d344652b1b7b60973d8c"


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
            seen = await next_event(
                events, "updated", b.peer_id, where=lambda p: len(p.tickets) == 2
            )
            kinds = {t.id: (t.kind, t.token) for t in seen.peer.tickets}
            assert kinds == {first: ("jwt", "header.claims.sig"), other: ("other", None)}

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
