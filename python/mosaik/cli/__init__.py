"""The ``mosaik`` command line (also ``python -m mosaik``).

Each command lives with its neighbours: ``demo``; ``beacon``, ``peers``,
``ping`` and ``dht`` (discovery); ``tail`` and ``publish`` (streams);
``group status``; ``bench``. ``_common`` holds what they share (node options,
errors, the runner that makes Ctrl-C prompt and errors one line).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .. import PROTOCOL_VERSION, __version__
from . import bench, demo, discovery, groups, streams
from ._common import EXIT_OK, Parser, configure_logging, run

__all__ = ["main", "parser"]


def parser() -> Parser:
    """The whole command line, every subcommand registered."""
    top = Parser(
        prog="mosaik",
        description="mosaik for Python: self-organizing networks of nodes that share "
        "streams and replicated state. Every command has --help.",
    )
    top.add_argument(
        "--version",
        action="version",
        version=f"mosaik {__version__} (mosaik-net; wire protocol of mosaik {PROTOCOL_VERSION})",
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo.register(commands)
    discovery.register(commands)
    streams.register(commands)
    groups.register(commands)
    bench.register(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    top = parser()
    arguments = sys.argv[1:] if argv is None else list(argv)
    if not arguments:
        top.print_help()
        return EXIT_OK
    args = top.parse_args(arguments)
    configure_logging(args)
    name = args.command if args.command != "group" else f"group {args.group_command}"
    return run(name, args.handler(args))
