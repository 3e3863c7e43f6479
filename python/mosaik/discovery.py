"""Discovery: what this node knows about its peers.

Each peer publishes a signed entry (its id, address, tags and the streams it
produces); :class:`PeerInfo` is the Python view of one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import _checks
from ._mosaik import id_of

if TYPE_CHECKING:
    from ._mosaik import Node, _PeerTuple

DEFAULT_PING_TIMEOUT = 5.0
#: What ``timeout=None`` means to the native side: wait as long as it takes.
_NO_TIMEOUT = 365 * 24 * 3600.0


@dataclass(frozen=True)
class PeerInfo:
    """A peer as its signed entry describes it. Tags and streams are hex ids."""

    peer_id: str
    address: str
    tags: frozenset[str] = field(default_factory=frozenset)
    streams: frozenset[str] = field(default_factory=frozenset)
    network_id: str = ""
    version: tuple[int, int] = (0, 0)

    @classmethod
    def _from_tuple(cls, raw: _PeerTuple) -> PeerInfo:
        peer_id, network_id, address, tags, streams, version = raw
        return cls(
            peer_id=peer_id,
            address=address,
            tags=frozenset(tags),
            streams=frozenset(streams),
            network_id=network_id,
            version=version,
        )

    def has_tag(self, name: str) -> bool:
        """Whether the peer carries tag ``name`` (a tag name or a 64-hex id)."""
        return id_of(_checks.check_str("name", name)).hex() in self.tags

    def produces(self, stream_name: str) -> bool:
        """Whether the peer produces ``stream_name`` (a stream name or a 64-hex id)."""
        return id_of(_checks.check_str("stream_name", stream_name)).hex() in self.streams

    def __repr__(self) -> str:
        parts = [f"<PeerInfo {self.peer_id[:10]}"]
        if self.tags:
            parts.append(f"{len(self.tags)} tags")
        if self.streams:
            parts.append(f"{len(self.streams)} streams")
        return " ".join(parts) + ">"


class Discovery:
    """``net.discovery``: peers of this network."""

    def __init__(self, node: Node) -> None:
        self._node = node

    async def ping(self, address: str, *, timeout: float | None = DEFAULT_PING_TIMEOUT) -> PeerInfo:
        """Asks the peer at ``address`` for its freshly signed entry.

        Raises :class:`mosaik.ConnectError` if it cannot be reached within
        ``timeout`` seconds (``None``: no limit, as mosaik's default is 5 s).
        """
        address = _checks.check_str("address", address)
        checked = _checks.check_timeout("timeout", timeout)
        raw = await self._node.ping(address, _NO_TIMEOUT if checked is None else checked)
        return PeerInfo._from_tuple(raw)

    def __repr__(self) -> str:
        return f"<Discovery of {self._node.peer_id[:10]}>"
