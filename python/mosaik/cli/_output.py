"""How commands print: JSON documents, aligned tables and peers' entries.

Tags and streams travel as hashes (mosaik's id rule), so a listing cannot
name them by itself; :class:`Names` recognises the names a user passes with
``--name`` (and mosaik's ``bootstrap`` tag) among them.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

from .._mosaik import id_of
from ..discovery import PeerInfo

#: Tags every listing recognises: what mosaik's bootstrap nodes (and ours) carry.
WELL_KNOWN = ("bootstrap",)


def print_json(document: Any) -> None:
    """One JSON document on one line of stdout, flushed at once."""
    print(json.dumps(document, separators=(",", ":")), flush=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()) -> str:
    """Rows under their headers in aligned columns; ``right`` columns align right."""
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    to_right = set(right)
    out = []
    for line in lines:
        cells = [
            cell.rjust(width) if i in to_right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def age(seconds: float) -> str:
    """``3s``, ``4m05s``, ``2h10m``: how long ago, at a glance."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Names:
    """The names behind the tag and stream ids a user knows of."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._by_id = {id_of(name).hex(): name for name in (*WELL_KNOWN, *names)}

    def label(self, hex_id: str) -> str:
        """The name of ``hex_id`` if known, else its first 16 hex characters."""
        return self._by_id.get(hex_id, hex_id[:16])

    def labels(self, hex_ids: Iterable[str]) -> str:
        return ", ".join(sorted(self.label(h) for h in hex_ids)) or "-"

    def known(self, hex_ids: Iterable[str]) -> dict[str, str]:
        """``{hex id: name}`` for the ids whose name is known."""
        return {h: self._by_id[h] for h in sorted(hex_ids) if h in self._by_id}


def peer_json(peer: PeerInfo, names: Names, now: float | None = None) -> dict[str, Any]:
    """A peer's entry as JSON: ids in hex, with the names known for its tags and streams."""
    now = time.time() if now is None else now
    return {
        "peer_id": peer.peer_id,
        "network_id": peer.network_id,
        "address": peer.address,
        "tags": sorted(peer.tags),
        "streams": sorted(peer.streams),
        "names": names.known((*peer.tags, *peer.streams)),
        "tickets": [
            {"id": t.id, "class_id": t.class_id, "kind": t.kind, "bytes": len(t.data)}
            for t in peer.tickets
        ],
        "version": list(peer.version),
        "updated_at": peer.updated_at,
        "age_seconds": round(max(0.0, now - peer.updated_at), 3),
    }


def peer_lines(peer: PeerInfo, names: Names) -> list[str]:
    """A peer's entry, one field per line (``ping``)."""
    tickets = [f"{t.kind} {t.id[:16]} ({len(t.data)} bytes)" for t in peer.tickets]
    signed = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(peer.updated_at))
    fields = [
        ("peer id", peer.peer_id),
        ("network", peer.network_id),
        ("address", peer.address),
        ("tags", names.labels(peer.tags)),
        ("streams", names.labels(peer.streams)),
        ("tickets", ", ".join(tickets) or "-"),
        ("version", ".".join(str(v) for v in peer.version)),
        ("signed", f"{signed} ({age(time.time() - peer.updated_at)} ago)"),
    ]
    return [f"{key:<10} {value}" for key, value in fields]


def peers_table(peers: Sequence[PeerInfo], names: Names) -> str:
    """The catalog as a table, one peer a row (``peers``)."""
    now = time.time()
    rows = [
        (
            p.peer_id[:16],
            names.labels(p.tags),
            names.labels(p.streams),
            str(len(p.tickets)),
            age(now - p.updated_at),
        )
        for p in sorted(peers, key=lambda p: p.peer_id)
    ]
    return table(("PEER", "TAGS", "STREAMS", "TICKETS", "UPDATED"), rows, right=(3, 4))


def stderr(message: str) -> None:
    """A status line for the person at the terminal, kept off stdout."""
    print(message, file=sys.stderr, flush=True)
