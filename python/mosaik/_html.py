"""The HTML summaries Jupyter shows (``_repr_html_``) for a network, a peer
list, a producer, a consumer and a group.

Everything here is read from the handles at display time. Tags, stream names
and tickets come from remote peers, so every value passes through
:func:`html.escape` on its way in; only the markup built here is trusted
(:class:`Html`). Ids are shown short, the full id in the tooltip, or by name
when this node knows the name that hashes to it (its own tags and streams).
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ._mosaik import ChannelInfo, PeerInfo, Stats, id_of

if TYPE_CHECKING:
    from .groups import Group
    from .network import Network
    from .streams import Consumer, Producer

#: Hex ids to the names they were made from, where this node knows them.
Names = Mapping[str, str]

_SHORT = 10


def remember(names: dict[str, str], name: str) -> None:
    """Notes the id ``name`` hashes to (a tag or a stream this node uses)."""
    hex_id = id_of(name).hex()
    if hex_id != name.lower():
        names[hex_id] = name


class Html(str):
    """Markup built here: inserted as it is, never escaped again."""


def _cell(value: object) -> str:
    return value if isinstance(value, Html) else html.escape(str(value))


def ident(hex_id: str | None, names: Names | None = None, *, me: str | None = None) -> Html:
    """An id shown short (or by name), the full id in its tooltip."""
    if hex_id is None:
        return Html("<i>none</i>")
    shown = (names or {}).get(hex_id) or hex_id[:_SHORT]
    marker = " <i>(this node)</i>" if hex_id == me else ""
    return Html(f'<code title="{html.escape(hex_id)}">{html.escape(shown)}</code>{marker}')


def idents(hex_ids: Iterable[str], names: Names | None = None, *, me: str | None = None) -> Html:
    """Several ids, named ones first, each as :func:`ident` shows it."""
    known = names or {}
    ordered = sorted(hex_ids, key=lambda i: (i not in known, known.get(i, i)))
    return Html(", ".join(ident(i, known, me=me) for i in ordered) or "<i>none</i>")


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Html:
    """A table, or "none" when there are no rows."""
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(value)}</td>" for value in row) + "</tr>" for row in rows
    )
    if not body:
        return Html("<i>none</i>")
    head = "".join(f"<th>{_cell(name)}</th>" for name in header)
    return Html(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def fields(rows: Iterable[tuple[str, object]]) -> Html:
    """A two-column table of names and values."""
    body = "".join(
        f'<tr><th style="text-align:left">{_cell(k)}</th>'
        f'<td style="text-align:left">{_cell(v)}</td></tr>'
        for k, v in rows
    )
    return Html(f"<table>{body}</table>")


def section(title: str, body: str, *, count: int | None = None) -> Html:
    """A titled part that the reader can fold."""
    suffix = "" if count is None else f" ({count})"
    return Html(
        f"<details open><summary><b>{_cell(title)}</b>{suffix}</summary>{_cell(body)}</details>"
    )


def card(title: str, *parts: str) -> Html:
    return Html(
        f'<div class="mosaik"><p><b>{_cell(title)}</b></p>{"".join(map(_cell, parts))}</div>'
    )


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def age(since: float) -> str:
    """How long ago ``since`` (seconds since the epoch) was, roughly."""
    seconds = max(0.0, time.time() - since)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _amount(stats: Stats) -> str:
    return f"{stats.datums:,} datums, {stats.bytes:,} bytes"


def _reasons(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items())) or "none"


def _tickets(peer: PeerInfo) -> str:
    kinds: dict[str, int] = {}
    for ticket in peer.tickets:
        kinds[ticket.kind] = kinds.get(ticket.kind, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "none"


# ---- the handles -------------------------------------------------------------------


def peers(catalog: Sequence[PeerInfo], names: Names | None = None) -> Html:
    """A catalog as a table: peer id, tags, streams, tickets, age."""
    rows = [
        (
            ident(p.peer_id),
            idents(p.tags, names),
            idents(p.streams, names),
            _tickets(p),
            age(p.updated_at),
        )
        for p in sorted(catalog, key=lambda p: p.peer_id)
    ]
    return table(("peer", "tags", "streams", "tickets", "updated"), rows)


def _channels(channels: Sequence[ChannelInfo]) -> Html:
    rows = [
        (ident(c.peer_id), c.state, f"{c.stats.datums:,}", f"{c.stats.bytes:,}") for c in channels
    ]
    return table(("peer", "state", "datums", "bytes"), rows)


def _producer_fields(p: Producer) -> list[tuple[str, object]]:
    state = "closed" if p._native.is_closed else ("online" if p.is_online else "offline")
    return [
        ("stream", p._name),
        ("stream id", ident(p.stream_id)),
        ("codec", p._codec),
        ("state", state),
        ("sent", _amount(p.stats)),
        ("refused", _reasons(p.refusals)),
    ]


def producer(p: Producer) -> Html:
    consumers = p.consumers
    return card(
        f"Producer {p._name}",
        fields(_producer_fields(p)),
        section("consumers", _channels(consumers), count=len(consumers)),
    )


def _consumer_fields(c: Consumer) -> list[tuple[str, object]]:
    return [
        ("stream", c._name),
        ("stream id", ident(c.stream_id)),
        ("codec", c._codec),
        ("state", "closed" if c._native.is_closed else "open"),
        ("received", _amount(c.stats)),
        ("dropped", f"{c.dropped:,}"),
    ]


def consumer(c: Consumer) -> Html:
    producers = c.producers
    return card(
        f"Consumer {c._name}",
        fields(_consumer_fields(c)),
        section("producers", _channels(producers), count=len(producers)),
    )


def group(g: Group, *, me: str | None = None) -> Html:
    status = g.status
    term, index = status.log_position
    machine = g.machine
    return card(
        f"Group {g.group_id[:_SHORT]}",
        fields(
            [
                ("group id", ident(g.group_id)),
                ("machine", "NoOp" if machine is None else type(machine).__qualname__),
                ("state", "closed" if g._native.is_closed else status.role),
                ("leader", ident(status.leader, me=me)),
                ("is leader", status.is_leader),
                ("online", status.is_online),
                ("term", status.term),
                ("committed", status.committed),
                ("log position", f"term {term}, index {index}"),
                ("bonds", idents(status.bonds)),
            ]
        ),
    )


def network(net: Network) -> Html:
    closed = net.is_closed
    catalog = [] if closed else net.discovery.peers()
    producers = net.streams._open_producers()
    consumers = net.streams._open_consumers()
    groups = net.groups._open_groups()
    producer_rows = [
        (
            p._name,
            p._codec,
            "online" if p.is_online else "offline",
            p._native.consumer_count,
            f"{p.stats.datums:,}",
            f"{p.stats.bytes:,}",
        )
        for p in producers
    ]
    consumer_rows = [
        (
            c._name,
            c._codec,
            c._native.producer_count,
            f"{c.stats.datums:,}",
            f"{c.stats.bytes:,}",
        )
        for c in consumers
    ]
    group_rows = []
    for g in groups:
        status = g.status
        group_rows.append(
            (
                ident(g.group_id),
                status.role,
                ident(status.leader, me=net.peer_id),
                status.committed,
                len(status.bonds),
            )
        )
    return card(
        f"Network {net.peer_id[:_SHORT]}",
        fields(
            [
                ("peer id", Html(f"<code>{html.escape(net.peer_id)}</code>")),
                ("network id", Html(f"<code>{html.escape(net.network_id)}</code>")),
                (
                    "address",
                    Html(f'<code style="word-break:break-all">{html.escape(net.address)}</code>'),
                ),
                ("tags", idents(net.discovery.me().tags, net._names)),
                ("state", "closed" if closed else "open"),
            ]
        ),
        section("peers", peers(catalog, net._names), count=len(catalog)),
        section(
            "producers",
            table(("stream", "codec", "state", "consumers", "datums", "bytes"), producer_rows),
            count=len(producer_rows),
        ),
        section(
            "consumers",
            table(("stream", "codec", "producers", "datums", "bytes"), consumer_rows),
            count=len(consumer_rows),
        ),
        section(
            "groups",
            table(("group", "role", "leader", "committed", "bonds"), group_rows),
            count=len(group_rows),
        ),
    )
