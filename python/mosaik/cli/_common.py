"""What every command shares: the parser, node options, errors and the runner.

Each command module registers its subcommands with :func:`command`, which
gives them ``-v``/``-q``; commands that start a node add :func:`add_node_options`
and open it with :func:`open_node`. :func:`run` drives a command's coroutine:
it turns the errors a user can cause into one line on stderr and exit status
2, and Ctrl-C into a prompt exit with status 130, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any, NoReturn

from .. import set_log_level
from .._mosaik import id_of
from ..errors import MosaikError
from ..network import Network

#: What a command is: its parsed arguments in, an exit status out.
Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: After Ctrl-C, how long a command may spend closing its node gracefully
#: (peers then see it depart at once) before the process just ends.
INTERRUPT_GRACE = 1.5

_log = logging.getLogger("mosaik.cli")


class CliError(Exception):
    """A problem the user can fix: shown as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, with a one-line error instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def command(
    commands: argparse._SubParsersAction[Parser], name: str, handler: Handler, summary: str
) -> Parser:
    """Adds the subcommand ``name`` that runs ``handler``; ``summary`` is its help."""
    parser: Parser = commands.add_parser(name, help=summary, description=summary)
    parser.set_defaults(handler=handler)
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more (-v: info, -vv: debug) on stderr",
    )
    noise.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    return parser


def add_node_options(parser: Parser, *, secret: bool = True) -> None:
    """The options of every command that starts a node."""
    node = parser.add_argument_group("node options")
    node.add_argument(
        "--bootstrap",
        metavar="ADDR",
        action="append",
        default=[],
        help="address of a peer to join through (repeatable), as a beacon prints it",
    )
    node.add_argument(
        "--local",
        action="store_true",
        help="loopback only: no relays, port mapping, mDNS, DHT or DNS (for tests)",
    )
    node.add_argument(
        "--relay",
        metavar="URL",
        help="relay server URL, or 'disabled' (default: the public iroh relays; none with --local)",
    )
    if secret:
        node.add_argument(
            "--secret",
            metavar="S",
            default=os.environ.get("MOSAIK_SECRET"),
            help="a stable identity: 64 hex characters are the secret key, any other "
            "string is hashed into one (mosaik's rule; default: $MOSAIK_SECRET, else random)",
        )


def secret_key(secret: str | None) -> bytes | None:
    """mosaik's rule (``Digest::from(&str)``, as its bootstrap example uses
    for ``--secret``): 64 hex characters are the key, anything else is blake3
    of the string. That is the network and stream id rule, ``id_of``."""
    if secret is None:
        return None
    if not secret:
        raise CliError("--secret: must not be empty")
    return id_of(secret)


@contextlib.asynccontextmanager
async def open_node(
    args: argparse.Namespace, network: str, *, tags: Sequence[str] = ()
) -> AsyncIterator[Network]:
    """A node of ``network`` as the node options ask, closed on the way out."""
    if not network:
        raise CliError("NETWORK: must not be empty")
    relay: str = args.relay or "default"
    try:
        net = await Network.create(
            network,
            secret_key=secret_key(getattr(args, "secret", None)),
            tags=tags,
            bootstrap=args.bootstrap,
            relay=relay,
            local=args.local,
        )
    except ValueError as e:
        # "bootstrap: not an endpoint ticket..." names the option as the API
        # spells it; say it as the command line does.
        message = str(e)
        for option in ("bootstrap", "relay"):
            if message.startswith(f"{option}:"):
                message = f"--{message}"
        raise CliError(message) from None
    try:
        yield net
    finally:
        await net.close()


def short(address: str) -> str:
    """An address (an ``endpoint…`` ticket, often 100+ characters) cut for messages."""
    return address if len(address) <= 32 else f"{address[:32]}…"


async def within(seconds: float, awaitable: Awaitable[Any], what: str) -> Any:
    """``awaitable``'s result, or a :class:`CliError` saying what did not happen in time."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        raise CliError(f"{what} within {seconds:g} s") from None


def configure_logging(args: argparse.Namespace) -> None:
    """Log lines on stderr, one per event, at the level ``-v``/``-q`` ask for."""
    logger = logging.getLogger("mosaik")
    if not any(getattr(h, "name", None) == "mosaik-cli" for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name("mosaik-cli")
        handler.setFormatter(logging.Formatter("mosaik: %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    verbose: int = getattr(args, "verbose", 0)
    if getattr(args, "quiet", False):
        set_log_level(logging.ERROR)
    elif verbose:
        set_log_level(logging.INFO if verbose == 1 else logging.DEBUG)
    elif not os.environ.get("MOSAIK_LOG"):
        set_log_level(logging.WARNING)


def run(name: str, main: Coroutine[Any, Any, int]) -> int:
    """Runs the command ``name`` to its exit status.

    Ctrl-C (or SIGTERM) cancels it: it gets :data:`INTERRUPT_GRACE` seconds to
    close its node, then the process ends regardless, with status 130 (143),
    without waiting for the native runtime to wind down. A second Ctrl-C ends
    it at once.
    """
    loop = asyncio.new_event_loop()
    task = loop.create_task(main)
    stopped_by: list[int] = []

    def stop(signum: int) -> None:
        if stopped_by:
            _exit_now(128 + stopped_by[0])
        stopped_by.append(signum)
        task.cancel()
        watchdog = threading.Timer(INTERRUPT_GRACE, _exit_now, (128 + signum,))
        watchdog.daemon = True
        watchdog.start()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(signum, stop, signum)
    try:
        status = _outcome(name, loop, task, lambda: bool(stopped_by))
    finally:
        _close_loop(loop)
    if stopped_by:
        # The node said goodbye; the runtime's own shutdown (an endpoint
        # draining a dial that never answered) could take seconds more.
        _exit_now(128 + stopped_by[0])
    return status


def _outcome(
    name: str,
    loop: asyncio.AbstractEventLoop,
    task: asyncio.Task[int],
    interrupted: Callable[[], bool],
) -> int:
    """The command's exit status, with what went wrong said on one line."""
    try:
        return loop.run_until_complete(task)
    except (asyncio.CancelledError, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 -- a CLI shows one line, never a traceback
        if interrupted():  # a node closing under Ctrl-C may fail any which way
            return EXIT_INTERRUPTED
        return _report(name, e)


def _report(name: str, error: Exception) -> int:
    if isinstance(error, CliError):
        return _fail(name, str(error))
    if isinstance(error, BrokenPipeError):  # `mosaik tail ... | head`: the reader left
        _silence_stdout()
        return EXIT_OK
    if isinstance(error, (MosaikError, ValueError, TypeError, OSError)):
        return _fail(name, _describe(error))
    if os.environ.get("MOSAIK_LOG", "").upper() == "DEBUG":
        _log.error("%s failed", name, exc_info=error)
    return _fail(
        name, f"unexpected {type(error).__name__}: {error} (MOSAIK_LOG=DEBUG shows more)", 1
    )


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, MosaikError) and not isinstance(error, (ValueError, TypeError)):
        return f"{type(error).__name__}: {text}"
    return text


def _fail(name: str, message: str, status: int = EXIT_USAGE) -> int:
    # One line, whatever the message holds.
    line = " ".join(message.split())
    print(f"mosaik {name}: error: {line}", file=sys.stderr, flush=True)
    return status


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancels what the command left running and closes the loop."""
    try:
        leftovers = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for leftover in leftovers:
            leftover.cancel()
        if leftovers:
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    except (Exception, KeyboardInterrupt):  # noqa: BLE001 -- leaving anyway
        pass
    finally:
        loop.close()


def _silence_stdout() -> None:
    """Points stdout at /dev/null so the interpreter's last flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _exit_now(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)
