"""Discovery: what this node knows about its peers.

Each peer publishes a signed entry (its id, address, tags and the streams it
produces); :class:`PeerInfo` is the Python view of one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from . import _checks
from ._mosaik import id_of

if TYPE_CHECKING:
    from ._mosaik import DiscoveryEvents, Node, _PeerTuple

EventKind = Literal["discovered", "updated", "departed"]

DEFAULT_PING_TIMEOUT = 5.0
#: What ``timeout=None`` means to the native side: wait as long as it takes.
_NO_TIMEOUT = 365 * 24 * 3600.0


@dataclass(frozen=True)
class DiscoveryConfig:
    """Discovery settings; the defaults are mosaik 0.3.13's. Times in seconds."""

    #: Entries not refreshed for this long leave the catalog.
    purge_after: float = 300.0
    #: Our entry is re-announced every ``announce_interval`` ± ``announce_jitter`` of it.
    announce_interval: float = 45.0
    announce_jitter: float = 0.5
    #: Gossiped entries must be this close to our clock.
    max_time_drift: float = 50.0
    #: Bound on one catalog sync, either side.
    sync_timeout: float = 5.0
    #: Events an ``events()`` subscriber may fall behind before it skips some.
    events_backlog: int = 100

    def _as_tuple(self) -> tuple[float, float, float, float, float, int]:
        for name in (
            "purge_after",
            "announce_interval",
            "announce_jitter",
            "max_time_drift",
            "sync_timeout",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
        if isinstance(self.events_backlog, bool) or not isinstance(self.events_backlog, int):
            raise TypeError(
                f"events_backlog: expected int, got {type(self.events_backlog).__name__}"
            )
        return (
            float(self.purge_after),
            float(self.announce_interval),
            float(self.announce_jitter),
            float(self.max_time_drift),
            float(self.sync_timeout),
            self.events_backlog,
        )


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

    @property
    def updated_at(self) -> float:
        """When the peer last signed this entry, as a Unix timestamp in seconds."""
        return self.version[1] / 1000

    def __repr__(self) -> str:
        def count(n: int, what: str) -> str:
            return f"{n} {what}{'' if n == 1 else 's'}"

        age = max(0.0, time.time() - self.updated_at)
        return (
            f"<PeerInfo {self.peer_id[:10]} {count(len(self.tags), 'tag')}, "
            f"{count(len(self.streams), 'stream')}, updated {age:.0f}s ago>"
        )


@dataclass(frozen=True)
class DiscoveryEvent:
    """A change in the catalog: ``kind`` is "discovered", "updated" or "departed"."""

    kind: EventKind
    peer: PeerInfo

    def __repr__(self) -> str:
        return f"<DiscoveryEvent {self.kind} {self.peer.peer_id[:10]}>"


class _Events:
    """``async for event in net.discovery.events()``; ends when the node closes."""

    def __init__(self, stream: DiscoveryEvents) -> None:
        self._stream = stream

    def __aiter__(self) -> AsyncIterator[DiscoveryEvent]:
        return self

    async def __anext__(self) -> DiscoveryEvent:
        item = await self._stream.next()
        if item is None:
            raise StopAsyncIteration
        kind, raw = item
        return DiscoveryEvent(kind, PeerInfo._from_tuple(raw))  # type: ignore[arg-type]


class Discovery:
    """``net.discovery``: how this node finds the other peers of its network."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def peers(self) -> list[PeerInfo]:
        """The current catalog, this node excluded."""
        return [PeerInfo._from_tuple(raw) for raw in self._node.peers()]

    def me(self) -> PeerInfo:
        """This node's own entry, as its peers see it."""
        return PeerInfo._from_tuple(self._node.me())

    async def wait_for_peers(self, n: int, timeout: float | None = None) -> list[PeerInfo]:
        """Waits until at least ``n`` other peers are known; returns them.

        Raises :class:`TimeoutError` after ``timeout`` seconds (no limit when None).
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n: expected int, got {type(n).__name__}")
        if n < 0:
            raise ValueError(f"n: must be >= 0, got {n}")
        checked = _checks.check_timeout("timeout", timeout)
        await asyncio.wait_for(self._node.wait_for_peers(n), checked)
        return self.peers()

    async def sync_with(self, address: str) -> int:
        """Exchanges full catalogs with the peer at ``address``; returns how many
        entries were new or newer. A peer of another network imports nothing."""
        return await self._node.sync_with(_checks.check_str("address", address))

    def events(self) -> AsyncIterator[DiscoveryEvent]:
        """Catalog changes from now on, as an async iterator."""
        return _Events(self._node.events())

    async def add_tags(self, *names: str) -> bool:
        """Adds tags to this node's entry and re-announces it; returns whether it changed."""
        return await self._node.add_tags(_checks.check_str_list("names", names))

    async def remove_tags(self, *names: str) -> bool:
        """Removes tags from this node's entry and re-announces it."""
        return await self._node.remove_tags(_checks.check_str_list("names", names))

    @property
    def rejections(self) -> dict[str, int]:
        """Discovery input this node refused (forged, stale, foreign, ...), by reason."""
        return dict(self._node.rejections())

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
        return f"<Discovery of {self._node.peer_id[:10]}: {len(self._node.peers())} peers>"
