"""``beacon``, ``peers``, ``ping`` and ``dht``: who is on a network.

``beacon`` is mosaik's bootstrap node (its ``examples/bootstrap.rs``): a node
that only helps others meet, with a stable identity from ``--secret`` and the
``bootstrap`` tag by default. ``peers`` joins a network and prints the catalog
it learns; ``ping`` asks one peer for its freshly signed entry.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from typing import Any

from ..discovery import PeerInfo
from ..errors import ConnectError
from ..network import Network
from ._common import (
    EXIT_OK,
    CliError,
    Parser,
    add_node_options,
    command,
    open_node,
    short,
    within,
)
from ._output import Names, peer_json, peer_lines, peers_table, print_json, stderr

#: A beacon's tags unless ``--tags`` says otherwise (mosaik's bootstrap example's default).
BEACON_TAGS = ("bootstrap",)
#: The network a ``ping`` node claims: a ping is answered whatever the network.
PING_NETWORK = "mosaik-cli-ping"
#: How often ``peers --watch`` redraws when nothing changed (ages move on).
WATCH_REFRESH = 1.0

_log = logging.getLogger("mosaik.cli")


def register(commands: argparse._SubParsersAction[Parser]) -> None:
    beacon_parser = command(
        commands, "beacon", beacon, "run a bootstrap node until Ctrl-C, printing its address"
    )
    beacon_parser.add_argument("network", metavar="NETWORK", help="network name or 64-hex id")
    beacon_parser.add_argument(
        "--tags",
        metavar="TAG",
        nargs="+",
        default=None,
        help=f"tags to advertise (default: {' '.join(BEACON_TAGS)})",
    )
    _json_option(beacon_parser, 'print {"address", "peer_id", "network_id"} as the first line')
    add_node_options(beacon_parser)

    peers_parser = command(commands, "peers", peers, "the live catalog of a network")
    peers_parser.add_argument("network", metavar="NETWORK", help="network name or 64-hex id")
    peers_parser.add_argument(
        "--wait",
        metavar="SECONDS",
        type=_seconds,
        default=5.0,
        help="how long to wait for the bootstrap peers and for --min-peers (default 5)",
    )
    peers_parser.add_argument(
        "--min-peers",
        metavar="N",
        type=int,
        default=1,
        help="wait (up to --wait) until N peers are known (default 1)",
    )
    peers_parser.add_argument(
        "--watch", action="store_true", help="keep the table up to date until Ctrl-C"
    )
    _name_option(peers_parser)
    _json_option(peers_parser, "print the catalog as JSON (with --watch: one line per change)")
    add_node_options(peers_parser)

    ping_parser = command(commands, "ping", ping, "a peer's signed entry and the round trip")
    ping_parser.add_argument("address", metavar="ADDR", help="the peer's address")
    ping_parser.add_argument(
        "--count", metavar="N", type=int, default=1, help="pings to send (default 1)"
    )
    ping_parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_seconds,
        default=5.0,
        help="give up on a ping after this long (default 5, as mosaik)",
    )
    _name_option(ping_parser)
    _json_option(ping_parser, "print the entry and round trips as JSON")
    add_node_options(ping_parser, secret=False)

    dht_parser = command(commands, "dht", dht, "mosaik's DHT bootstrap slots of a network")
    dht_parser.add_argument("network", metavar="NETWORK", help="network name or 64-hex id")
    _json_option(dht_parser, "print the answer as JSON")
    add_node_options(dht_parser, secret=False)


def _json_option(parser: Parser, text: str) -> None:
    parser.add_argument("--json", action="store_true", help=text)


def _name_option(parser: Parser) -> None:
    parser.add_argument(
        "--name",
        metavar="NAME",
        action="append",
        default=[],
        help="a tag or stream name to show instead of its hash (repeatable)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 24 * 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 86400 seconds, got {text}")
    return value


# ---- beacon ------------------------------------------------------------------------------


async def beacon(args: argparse.Namespace) -> int:
    tags = BEACON_TAGS if args.tags is None else tuple(args.tags)
    async with open_node(args, args.network, tags=tags) as net:
        if args.json:
            print_json(
                {"address": net.address, "peer_id": net.peer_id, "network_id": net.network_id}
            )
        else:
            print(f"beacon of network {args.network!r} ({net.network_id})", flush=True)
            print(f"peer id  {net.peer_id}")
            print(f"address  {net.address}", flush=True)
            stderr("Ctrl-C to stop; others join with --bootstrap ADDR")
        # The address is everything a joiner needs; the events are for the
        # person watching (JSON mode prints nothing after the first line).
        async for event in net.discovery.events():
            if not args.json:
                print(f"{time.strftime('%H:%M:%S')}  {event.kind:10s} {event.peer.peer_id[:16]}")
                sys.stdout.flush()
    return EXIT_OK


# ---- peers -------------------------------------------------------------------------------


async def peers(args: argparse.Namespace) -> int:
    if args.local and not args.bootstrap:
        raise CliError("--local finds no peers by itself: give --bootstrap ADDR")
    if args.min_peers < 0:
        raise CliError("--min-peers: must be at least 0")
    names = Names(args.name)
    async with open_node(args, args.network) as net:
        await _meet(net, args.bootstrap, args.wait)
        try:
            await net.discovery.wait_for_peers(args.min_peers, timeout=args.wait)
        except asyncio.TimeoutError:
            pass  # print what is known: an empty catalog is an answer too
        if args.watch:
            await _watch(net, names, args.json)
        elif args.json:
            print_json(_catalog_json(net, names))
        else:
            _print_catalog(net, args.network, names)
    return EXIT_OK


async def _meet(net: Network, bootstrap: list[str], seconds: float) -> None:
    """A full catalog exchange with every bootstrap peer, so the first listing is complete."""
    for address in bootstrap:
        try:
            await within(
                seconds, net.discovery.sync_with(address), f"no answer from {short(address)}"
            )
        except ConnectError as e:
            raise CliError(f"cannot reach {short(address)}: {e}") from None


def _catalog_json(net: Network, names: Names) -> dict[str, Any]:
    now = time.time()
    return {
        "network_id": net.network_id,
        "peer_id": net.peer_id,
        "peers": [peer_json(p, names, now) for p in sorted(net.discovery.peers(), key=_by_id)],
    }


def _count(peers: int) -> str:
    return "1 peer" if peers == 1 else f"{peers} peers"


def _by_id(peer: PeerInfo) -> str:
    return peer.peer_id


def _print_catalog(net: Network, network: str, names: Names) -> None:
    known = net.discovery.peers()
    print(f"network {network!r} ({net.network_id[:16]}): {_count(len(known))} besides this one")
    if known:
        print(peers_table(known, names))
    sys.stdout.flush()


async def _watch(net: Network, names: Names, as_json: bool) -> None:
    """Redraws on every catalog change, and every second for the ages."""
    events = net.discovery.events().__aiter__()
    redraw = sys.stdout.isatty() and not as_json
    last: list[tuple[Any, ...]] | None = None
    while True:
        known = sorted(net.discovery.peers(), key=_by_id)
        # A re-signed entry with nothing new in it is not a change worth a line.
        shape = [_shape(p) for p in known]
        if redraw or shape != last:
            if as_json:
                print_json(_catalog_json(net, names))
            else:
                if redraw:
                    print("\x1b[H\x1b[2J", end="")  # home, clear screen
                stamp = time.strftime("%H:%M:%S")
                count = _count(len(known))
                print(f"{stamp}  network {net.network_id[:16]}: {count} (Ctrl-C to stop)")
                if known:
                    print(peers_table(known, names))
                print(flush=True)
        last = shape
        await _next_change(events)


def _shape(peer: PeerInfo) -> tuple[Any, ...]:
    """What a listing shows of a peer, but for its age."""
    tickets = frozenset(t.id for t in peer.tickets)
    return (peer.peer_id, peer.address, peer.tags, peer.streams, tickets)


async def _next_change(events: Any) -> None:
    try:
        await asyncio.wait_for(events.__anext__(), WATCH_REFRESH)
    except (asyncio.TimeoutError, StopAsyncIteration):
        pass


# ---- ping --------------------------------------------------------------------------------


async def ping(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise CliError("--count: must be at least 1")
    names = Names(args.name)
    round_trips: list[float] = []
    entry: PeerInfo | None = None
    async with open_node(args, PING_NETWORK) as net:
        _log.info("pinging %s from %s", short(args.address), net.peer_id[:16])
        for _ in range(args.count):
            started = time.perf_counter()
            try:
                entry = await net.discovery.ping(args.address, timeout=args.timeout)
            except ConnectError as e:
                raise CliError(f"cannot reach {short(args.address)}: {e}") from None
            round_trips.append((time.perf_counter() - started) * 1000)
            if not args.json and args.count > 1:
                print(f"entry from {entry.peer_id[:16]}: {round_trips[-1]:.2f} ms", flush=True)
    assert entry is not None
    if args.json:
        print_json({"peer": peer_json(entry, names), "round_trips_ms": round_trips})
        return EXIT_OK
    print("\n".join(peer_lines(entry, names)))
    if args.count == 1:
        print(f"{'round trip':<10} {round_trips[0]:.2f} ms (the first includes the handshake)")
    else:
        low, high = min(round_trips), max(round_trips)
        mean = sum(round_trips) / len(round_trips)
        print(f"{'round trip':<10} min {low:.2f} / avg {mean:.2f} / max {high:.2f} ms")
    return EXIT_OK


# ---- dht ---------------------------------------------------------------------------------


async def dht(args: argparse.Namespace) -> int:
    if args.local:
        message = (
            "DHT is off in local mode (--local): nodes meet only through --bootstrap addresses"
        )
        if args.json:
            print_json({"network": args.network, "dht": "off", "reason": message})
        else:
            print(message)
        return EXIT_OK
    # Keep it honest: the core does run mosaik's DHT bootstrap for nodes
    # started without --local, but it does not expose the slot chain.
    raise CliError(
        "inspecting the DHT bootstrap slots is not supported by this build "
        "(nodes started without --local still use the DHT to find each other)"
    )
