"""``Network``: a mosaik node and the entry point to its subsystems."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

from . import _checks, _html
from ._handles import Closing, Live, Native
from ._mosaik import Node
from .discovery import Discovery, DiscoveryConfig
from .groups import Groups
from .streams import Streams

if TYPE_CHECKING:
    from ._mosaik import _NodeOptions


class Network(Closing):
    """A running node of one mosaik network.

    Create it with ``await Network.create(...)`` or
    ``async with Network.create(...) as net:``.
    """

    def __init__(self, node: Node, tags: Iterable[str] = ()) -> None:
        if not isinstance(node, Node):
            raise TypeError("use `await Network.create(...)` to start a network")
        self._native = node
        # The names this node knows of the tag and stream ids it shows (by id, in hex).
        self._names: dict[str, str] = {}
        for tag in tags:
            _html.remember(self._names, tag)
        self._discovery = Discovery(node.discovery, node.peer_id, self._names)
        self._streams = Streams(node.streams, node.peer_id, self._names)
        self._groups = Groups(node.groups, node.peer_id)
        _LIVE.add(self)

    @staticmethod
    def create(
        network: str,
        *,
        secret_key: bytes | None = None,
        tags: Iterable[str] = (),
        bootstrap: Iterable[str] = (),
        relay: str = "default",
        bind: str | None = None,
        local: bool = False,
        mdns: bool = False,
        dht: bool | None = None,
        discovery: DiscoveryConfig | None = None,
    ) -> _Creating:
        """Starts a node of ``network`` (a name, or a 64-hex network id).

        - ``secret_key``: a 32-byte Ed25519 seed; random when None.
        - ``tags``: role tags this node advertises.
        - ``bootstrap``: addresses (``net.address`` strings) of known peers.
        - ``relay``: ``"default"`` (n0's public relays), ``"disabled"``, or a relay URL.
        - ``bind``: ``"ip:port"`` to bind; any port when None.
        - ``local``: loopback only, no port mapping, mDNS, DHT or DNS; relays
          off unless ``relay`` names a (loopback) URL. Use it for tests.
        - ``mdns``: also find peers' addresses on the LAN by mDNS (off, as in
          mosaik; not allowed with ``local``).
        - ``dht``: find peers of the network through the public Mainline DHT;
          on by default as in mosaik, off (and not allowed) with ``local``.
        - ``discovery``: a :class:`DiscoveryConfig`; mosaik's defaults when None.

        Returns promptly whether or not a relay is reachable. The result can
        be awaited or used with ``async with``.
        """
        name = _checks.check_str("network", network)
        checked_discovery = _checks.check_instance(
            "discovery", discovery, DiscoveryConfig, "mosaik.DiscoveryConfig"
        )
        options: _NodeOptions = {
            "secret_key": _checks.check_secret_key("secret_key", secret_key),
            "tags": _checks.check_str_list("tags", tags),
            "bootstrap": _checks.check_str_list("bootstrap", bootstrap),
            "relay": _checks.check_relay("relay", relay),
            "bind": _checks.check_optional_str("bind", bind),
            "local": _checks.check_bool("local", local),
            "mdns": _checks.check_bool("mdns", mdns),
            "dht": _checks.check_optional_bool("dht", dht),
            "discovery": (checked_discovery or DiscoveryConfig())._checked(),
        }
        return _Creating(name, options)

    peer_id = Native[str]("This node's id: its Ed25519 public key in hex.")
    network_id = Native[str]("The network's id, 64 hex.")
    address = Native[str](
        "Everything another node needs to reach this one (an iroh ``endpoint…`` ticket)."
    )
    is_closed = Native[bool]("Whether the node is closed.")

    @property
    def discovery(self) -> Discovery:
        return self._discovery

    @property
    def streams(self) -> Streams:
        return self._streams

    @property
    def groups(self) -> Groups:
        return self._groups

    async def online(self) -> None:
        """Waits until the node is online as mosaik means it: it has a home
        relay. Without relays (``local=True`` or ``relay="disabled"``) it is
        online at once. Raises :class:`Closed` if the node closes first."""
        await self._native.online()

    async def close(self) -> None:
        """Closes the node gracefully. Idempotent."""
        await self._native.close()

    def __repr__(self) -> str:
        if self.is_closed:
            state = "closed"
        else:
            counts = (
                (len(self._discovery.peers()), "peer"),
                (len(self._streams._open_producers()), "producer"),
                (len(self._streams._open_consumers()), "consumer"),
                (len(self._groups._open_groups()), "group"),
            )
            state = "open, " + ", ".join(_html.plural(n, word) for n, word in counts)
        return f"<Network {self.peer_id[:10]} network={self.network_id[:10]} {state}>"

    def _repr_html_(self) -> str:
        return _html.network(self)


#: Every network of this process not yet garbage-collected (closed ones too).
_LIVE = Live[Network]()


def open_networks() -> list[Network]:
    """The networks of this process that are open, oldest first."""
    return [net for net in _LIVE.items() if not net.is_closed]


class _Creating:
    """What ``Network.create`` returns: awaitable, or an async context manager."""

    def __init__(self, network: str, options: _NodeOptions) -> None:
        self._args = (network, options)
        self._network: Network | None = None

    async def _start(self) -> Network:
        network, options = self._args
        return Network(await Node.create(network, options), options["tags"])

    def __await__(self) -> Generator[Any, None, Network]:
        return self._start().__await__()

    async def __aenter__(self) -> Network:
        self._network = await self._start()
        return self._network

    async def __aexit__(self, *exc: object) -> None:
        if self._network is not None:
            await self._network.close()
