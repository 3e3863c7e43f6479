"""Discovery: what this node knows about its peers.

Each peer publishes a signed entry (its id, address, tags, the streams it
produces, the groups it runs and its tickets); :class:`PeerInfo` is the Python
view of one. Tags are self-asserted: any node may claim any tag, so a tag is a
role hint, never a credential. Tickets are credentials: a validator
(:class:`mosaik.Jwt`) checks them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from . import _checks, _html
from ._mosaik import DEFAULTS, DiscoveryEvent, PeerInfo, TicketInfo

if TYPE_CHECKING:
    from ._mosaik import Discovery as NativeDiscovery
    from ._mosaik import DiscoveryEvents

MIN_ANNOUNCE_INTERVAL = 0.1
"""The shortest announce interval a node accepts, in seconds."""
JWT_CLASS = "mosaik.tickets.jwt.v1"
"""The class of mosaik's JWT tickets."""
MAX_TICKET_BYTES = 64 * 1024
"""The largest ticket this node attaches (TDX quotes are the big ones)."""


def _ticket(name: str, token: object, ticket_class: object) -> tuple[str, bytes]:
    if isinstance(token, str):
        data = token.encode()
    elif isinstance(token, (bytes, bytearray, memoryview)):
        data = bytes(token)
    else:
        raise TypeError(f"{name}: expected str or bytes, got {type(token).__name__}")
    if not data:
        raise ValueError(f"{name}: a ticket cannot be empty")
    if len(data) > MAX_TICKET_BYTES:
        raise ValueError(
            f"{name}: {len(data)} bytes, more than the {MAX_TICKET_BYTES} a ticket may have"
        )
    return _checks.check_str("ticket_class", ticket_class), data


__all__ = [
    "JWT_CLASS",
    "Discovery",
    "DiscoveryConfig",
    "DiscoveryEvent",
    "EventKind",
    "PeerInfo",
    "PeerList",
    "TicketInfo",
]

EventKind = Literal["discovered", "updated", "departed"]

#: What ``timeout=None`` means to the native side: wait as long as it takes.
_NO_TIMEOUT = 365 * 24 * 3600.0


@dataclass(frozen=True)
class DiscoveryConfig:
    """Discovery settings; the defaults are mosaik 0.3.13's. Times in seconds."""

    #: Entries not refreshed for this long leave the catalog.
    purge_after: float = DEFAULTS["purge_after"]
    #: Our entry is re-announced every ``announce_interval`` ± ``announce_jitter`` of it.
    announce_interval: float = DEFAULTS["announce_interval"]
    announce_jitter: float = DEFAULTS["announce_jitter"]
    #: Gossiped entries must be this close to our clock.
    max_time_drift: float = DEFAULTS["max_time_drift"]
    #: Bound on one catalog sync, either side.
    sync_timeout: float = DEFAULTS["sync_timeout"]
    #: Events an ``events()`` subscriber may fall behind before it skips some.
    events_backlog: int = DEFAULTS["events_backlog"]

    def _checked(self) -> DiscoveryConfig:
        """This config, once every field has passed its check (the native
        side reads the fields by name)."""
        seconds = ("purge_after", "announce_interval", "max_time_drift", "sync_timeout")
        _checks.check_fields(self, seconds, _checks.check_seconds)
        # Each announce re-signs and gossips the entry to every neighbour: a
        # tiny interval floods the network; a purge sooner than the next
        # announce drops live peers.
        if self.announce_interval < MIN_ANNOUNCE_INTERVAL:
            raise ValueError(
                f"announce_interval: must be at least {MIN_ANNOUNCE_INTERVAL} s, "
                f"got {self.announce_interval!r}"
            )
        if self.purge_after <= self.announce_interval:
            raise ValueError(
                f"purge_after: must exceed announce_interval ({self.announce_interval!r} s), "
                f"got {self.purge_after!r}"
            )
        _checks.check_fraction("announce_jitter", self.announce_jitter)
        _checks.check_int("events_backlog", self.events_backlog, minimum=1)
        return self


class PeerList(list[PeerInfo]):
    """A list of :class:`PeerInfo` that Jupyter shows as a table (peer id,
    tags, streams, tickets, age); tags and streams this node knows by name
    are shown by name."""

    def __init__(self, peers: Iterable[PeerInfo] = (), names: _html.Names | None = None) -> None:
        super().__init__(peers)
        self._names = names

    def _repr_html_(self) -> str:
        return _html.card(_html.plural(len(self), "peer"), _html.peers(self, self._names))


class _Events:
    """``async for event in net.discovery.events()``; ends when the node closes."""

    def __init__(self, stream: DiscoveryEvents) -> None:
        self._stream = stream

    def __aiter__(self) -> AsyncIterator[DiscoveryEvent]:
        return self

    async def __anext__(self) -> DiscoveryEvent:
        event = await self._stream.next()
        if event is None:
            raise StopAsyncIteration
        return event


class Discovery:
    """``net.discovery``: how this node finds the other peers of its network."""

    def __init__(self, native: NativeDiscovery, peer_id: str, names: dict[str, str]) -> None:
        self._native = native
        self._peer_id = peer_id
        self._names = names

    def peers(self) -> PeerList:
        """The current catalog, this node excluded (a list)."""
        return PeerList(self._native.peers(), self._names)

    def me(self) -> PeerInfo:
        """This node's own entry, as its peers see it."""
        return self._native.me()

    async def wait_for_peers(self, n: int, timeout: float | None = None) -> PeerList:
        """Waits until at least ``n`` other peers are known; returns them.

        Raises :class:`TimeoutError` after ``timeout`` seconds (no limit when None).
        """
        n = _checks.check_int("n", n, minimum=0)
        checked = _checks.check_timeout("timeout", timeout)
        await asyncio.wait_for(self._native.wait_for_peers(n), checked)
        return self.peers()

    async def sync_with(self, address: str) -> int:
        """Exchanges full catalogs with the peer at ``address``; returns how many
        entries were new or newer. A peer of another network imports nothing."""
        return await self._native.sync_with(_checks.check_str("address", address))

    def events(self) -> AsyncIterator[DiscoveryEvent]:
        """Catalog changes from now on, as an async iterator."""
        return _Events(self._native.events())

    async def watch(self) -> AsyncIterator[PeerList]:
        """The catalog now, then again after each change, as an async
        iterator of :class:`PeerList` snapshots (mosaik's ``catalog_watch``).
        Changes that arrive while the caller is busy fold into one snapshot:
        an unchanged catalog is never yielded twice in a row. Ends when the
        node closes."""
        events = self._native.events()  # subscribed before the first look: nothing is missed
        last = self.peers()
        yield last
        while await events.next() is not None:
            current = self.peers()
            if current != last:
                last = current
                yield current

    async def add_tags(self, *names: str) -> bool:
        """Adds tags to this node's entry and re-announces it; returns whether it changed."""
        checked = _checks.check_str_list("names", names)
        for name in checked:
            _html.remember(self._names, name)
        return await self._native.add_tags(checked)

    async def remove_tags(self, *names: str) -> bool:
        """Removes tags from this node's entry and re-announces it."""
        return await self._native.remove_tags(_checks.check_str_list("names", names))

    async def add_ticket(self, token: str | bytes, *, ticket_class: str = JWT_CLASS) -> str:
        """Attaches a ticket (a JWT from :class:`mosaik.JwtIssuer` by default) to
        this node's entry, re-signed and re-announced at once; returns its id.

        Adding the same ticket twice changes nothing. ``ticket_class`` names
        another class (a name or a 64-hex id) for tickets of other kinds.
        """
        return await self._native.add_ticket(*_ticket("token", token, ticket_class), False)

    async def replace_ticket(self, token: str | bytes, *, ticket_class: str = JWT_CLASS) -> str:
        """Swaps every ticket of that class for this one in one re-signed entry,
        so peers never see this node without one (a renewal); returns its id."""
        return await self._native.add_ticket(*_ticket("token", token, ticket_class), True)

    async def remove_ticket(self, ticket_id: str) -> bool:
        """Detaches the ticket ``ticket_id``; returns whether this node carried it.
        Whatever that ticket allowed ends as its holders hear of the change."""
        ticket_id = _checks.check_str("ticket_id", ticket_id)
        if len(ticket_id) != 64 or any(c not in "0123456789abcdefABCDEF" for c in ticket_id):
            raise ValueError(f"ticket_id: expected 64 hex characters, got {ticket_id!r}")
        return await self._native.remove_ticket(ticket_id)

    @property
    def rejections(self) -> dict[str, int]:
        """Discovery input this node refused (forged, stale, foreign, ...), by reason."""
        return dict(self._native.rejections())

    async def ping(
        self, address: str, *, timeout: float | None = DEFAULTS["ping_timeout"]
    ) -> PeerInfo:
        """Asks the peer at ``address`` for its freshly signed entry.

        Raises :class:`mosaik.ConnectError` if it cannot be reached within
        ``timeout`` seconds (``None``: no limit; mosaik's default is 5 s).
        """
        address = _checks.check_str("address", address)
        checked = _checks.check_timeout("timeout", timeout)
        return await self._native.ping(address, _NO_TIMEOUT if checked is None else checked)

    def __repr__(self) -> str:
        return f"<Discovery of {self._peer_id[:10]}: {len(self._native.peers())} peers>"
