"""``group status``: a group as one of its members sees it.

The command joins the group of a key as mosaik's NoOp machine (the group a
Rust ``network.groups().with_key(GroupKey::from_secret(key)).join()`` forms),
waits for a leader and for this member to catch up, and prints the leader,
bonds, committed index and log position. Joining makes it a voting member
while it runs; ``--observer`` joins without ever standing for election.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from ..groups import ConsensusConfig, Group
from ._common import EXIT_OK, CliError, Parser, add_node_options, command, open_node
from ._output import print_json, stderr

#: The exit status when no leader was known by the end of ``--wait``.
EXIT_NO_LEADER = 1


def register(commands: argparse._SubParsersAction[Parser]) -> None:
    group_parser: Parser = commands.add_parser(
        "group", help="inspect a group", description="inspect a group"
    )
    group_commands = group_parser.add_subparsers(
        dest="group_command", metavar="COMMAND", required=True
    )
    status_parser = command(
        group_commands, "status", status, "a group's leader, bonds and log, as a member sees them"
    )
    status_parser.add_argument("network", metavar="NETWORK", help="network name or 64-hex id")
    status_parser.add_argument("key", metavar="KEY", help="the group's secret key (a string)")
    status_parser.add_argument(
        "--wait",
        metavar="SECONDS",
        type=float,
        default=10.0,
        help="how long to wait for a leader and to catch up with it (default 10); "
        "exit status 1 if no leader is known by then",
    )
    status_parser.add_argument(
        "--observer", action="store_true", help="join as an observer: never stand for election"
    )
    status_parser.add_argument("--json", action="store_true", help="print the status as JSON")
    add_node_options(status_parser)


async def status(args: argparse.Namespace) -> int:
    if not 0 <= args.wait <= 24 * 3600:
        raise CliError("--wait: must be between 0 and 86400 seconds")
    if not args.key:
        raise CliError("KEY: must not be empty")
    async with open_node(args, args.network) as net:
        started = time.monotonic()
        group = net.groups.join(args.key, consensus=ConsensusConfig(observer=args.observer))
        async with group:
            await _settle(group, args.wait)
            waited = time.monotonic() - started
            report = _report(group, net.peer_id, waited)
            if args.json:
                print_json(report)
            else:
                _print_report(report)
    if report["leader"] is None:
        stderr(f"mosaik group status: no leader within {args.wait:g} s")
        return EXIT_NO_LEADER
    return EXIT_OK


async def _settle(group: Group, seconds: float) -> None:
    """Until a leader is known and this member is in sync with it, or ``seconds`` pass."""
    try:
        await asyncio.wait_for(group.when.online(), seconds)
    except asyncio.TimeoutError:
        pass  # the report says what is known


def _report(group: Group, peer_id: str, waited: float) -> dict[str, Any]:
    now = group.status
    term, index = now.log_position
    return {
        "group_id": group.group_id,
        "peer_id": peer_id,
        "leader": now.leader,
        "role": now.role,
        "term": now.term,
        "online": now.is_online,
        "bonds": sorted(now.bonds),
        "committed": now.committed,
        "log_position": {"term": term, "index": index},
        "waited_seconds": round(waited, 3),
    }


def _print_report(report: dict[str, Any]) -> None:
    leader = report["leader"]
    if leader is None:
        leader_text = "none known"
    elif leader == report["peer_id"]:
        leader_text = f"{leader} (this member)"
    else:
        leader_text = leader
    bonds = report["bonds"]
    position = report["log_position"]
    fields = [
        ("group", report["group_id"]),
        ("leader", leader_text),
        ("member", f"{report['peer_id']} ({report['role']}, term {report['term']})"),
        ("online", "yes" if report["online"] else "no (no leader, or catching up)"),
        ("bonds", f"{len(bonds)}" + "".join(f"\n{'':11}{b}" for b in bonds)),
        ("committed", str(report["committed"])),
        ("log", f"index {position['index']} (term {position['term']})"),
    ]
    print("\n".join(f"{key:<10} {value}" for key, value in fields), flush=True)
