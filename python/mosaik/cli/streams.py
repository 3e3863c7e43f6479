"""``tail`` and ``publish``: a stream on the terminal, one datum a line.

Both read and write datums as text the same way, so ``publish`` takes what
``tail`` prints: ``json`` as JSON, ``str`` as is, ``bytes`` and ``raw`` as
hex, numbers and ``bool`` as JSON writes them, ``()`` as ``()``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any, Callable

from .. import codecs
from ..errors import DecodeError, Full, Offline
from ..streams import Producer
from ._common import EXIT_OK, CliError, Parser, add_node_options, command, open_node, within
from ._output import stderr

CODECS = tuple(sorted(codecs.BUILT_IN))
#: Lines ``publish`` reads ahead of what it has sent.
READ_AHEAD = 1024
#: Datums ``tail`` takes from the consumer per wake-up.
TAIL_BATCH = 1024

_log = logging.getLogger("mosaik.cli")


def register(commands: argparse._SubParsersAction[Parser]) -> None:
    tail_parser = command(
        commands, "tail", tail, "print a stream's datums as they arrive, one per line"
    )
    _stream_arguments(tail_parser)
    tail_parser.add_argument(
        "--count", metavar="N", type=int, default=None, help="exit after N datums"
    )
    add_node_options(tail_parser)

    publish_parser = command(
        commands, "publish", publish, "send each line of standard input as one datum"
    )
    _stream_arguments(publish_parser)
    publish_parser.add_argument(
        "--wait-subscribers",
        metavar="N",
        type=int,
        default=1,
        help="send nothing until N consumers are subscribed (default 1; 0: do not wait, "
        "and drop the lines read while no one is subscribed)",
    )
    publish_parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=30.0,
        help="how long to wait for the subscribers, and for the last datum "
        "to reach them (default 30)",
    )
    add_node_options(publish_parser)


def _stream_arguments(parser: Parser) -> None:
    parser.add_argument("network", metavar="NETWORK", help="network name or 64-hex id")
    parser.add_argument("stream", metavar="STREAM", help="stream name or 64-hex id")
    parser.add_argument(
        "--codec",
        metavar="C",
        choices=CODECS,
        default="bytes",
        help=f"how datums are encoded, one of {', '.join(CODECS)} (default bytes; "
        "bytes and raw are shown and read as hex)",
    )


# ---- datums as text ----------------------------------------------------------------------


def show(codec: str, datum: Any) -> str:
    """One datum as one line of text."""
    if codec == "str":
        return str(datum)
    if isinstance(datum, (bytes, bytearray, memoryview)):
        return bytes(datum).hex()
    if codec == "()":
        return "()"
    return json.dumps(datum, separators=(",", ":"), ensure_ascii=False)


def reader(codec: str) -> Callable[[str], Any]:
    """How ``publish`` turns a line (without its newline) into a datum."""
    if codec == "str":
        return lambda line: line
    if codec in ("bytes", "raw"):
        return _hex
    if codec == "json":
        return json.loads
    if codec == "()":
        return lambda line: None
    if codec == "bool":
        return _bool
    if codec == "f64":
        return float
    return lambda line: int(line, 10)  # u8 ... i64; the codec checks the range


def _hex(line: str) -> bytes:
    try:
        return bytes.fromhex(line)
    except ValueError:
        raise ValueError(f"expected hex (as tail prints bytes), got {line[:40]!r}") from None


def _bool(line: str) -> bool:
    words = {"true": True, "false": False}
    if line.strip() not in words:
        raise ValueError(f"expected true or false, got {line[:40]!r}")
    return words[line.strip()]


# ---- tail --------------------------------------------------------------------------------


async def tail(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise CliError("--count: must be at least 1")
    async with open_node(args, args.network) as net:
        consumer = net.streams.consumer(args.stream, codec=args.codec)
        _log.info("tail: following %r of %r as %s", args.stream, args.network, net.peer_id[:16])
        received = 0
        while args.count is None or received < args.count:
            wanted = TAIL_BATCH if args.count is None else min(TAIL_BATCH, args.count - received)
            try:
                batch = await consumer.recv_batch(wanted)
            except DecodeError as e:
                # That producer's subscription ends; the others go on.
                stderr(f"mosaik tail: skipped a datum that is not {args.codec}: {e}")
                continue
            sys.stdout.write("".join(f"{show(args.codec, d)}\n" for d in batch))
            sys.stdout.flush()
            received += len(batch)
    return EXIT_OK


# ---- publish -----------------------------------------------------------------------------


async def publish(args: argparse.Namespace) -> int:
    if args.wait_subscribers < 0:
        raise CliError("--wait-subscribers: must be at least 0")
    if not args.timeout > 0:
        raise CliError("--timeout: must be a positive number of seconds")
    parse = reader(args.codec)
    async with open_node(args, args.network) as net:
        # "block": a slow consumer slows the pipe down instead of losing datums.
        producer = net.streams.producer(args.stream, codec=args.codec, lagging="block")
        if args.wait_subscribers:
            _log.info("publish: waiting for %d subscriber(s)", args.wait_subscribers)
            await within(
                args.timeout,
                producer.when.subscribed(args.wait_subscribers),
                _too_few(args.wait_subscribers, args.stream),
            )
        sent = dropped = 0
        async for number, line in _stdin_lines():
            if not line.strip() and args.codec != "str":
                continue
            try:
                datum = parse(line)
                producer.try_send(datum)
            except (ValueError, TypeError) as e:
                raise CliError(f"line {number}: {e}") from None
            except Offline:
                if not args.wait_subscribers:
                    dropped += 1  # nobody to send it to, and we were told not to wait
                    continue
                await within(args.timeout, producer.send(datum), _too_few(1, args.stream))
            except Full:  # a consumer is behind: wait for it ("block")
                await within(args.timeout, producer.send(datum), "a subscriber stalled")
            sent += 1
        await within(args.timeout, _delivered(producer, sent), "the last datums were not sent")
        unsent = f" ({dropped} dropped: no subscriber then)" if dropped else ""
        stderr(f"published {sent} datums to {args.stream!r}{unsent}")
    return EXIT_OK


def _too_few(wanted: int, stream: str) -> str:
    if wanted == 1:
        return f"no subscriber to {stream!r}"
    return f"fewer than {wanted} subscribers to {stream!r}"


async def _delivered(producer: Producer, sent: int) -> None:
    """Until every datum has left for the consumers (closing drops what is queued)."""
    # Native counters have no event to await.
    while producer.stats.datums < sent or any(  # noqa: ASYNC110
        c.stats.datums < sent for c in producer.consumers if c.state == "connected"
    ):
        await asyncio.sleep(0.01)


async def _stdin_lines() -> AsyncIterator[tuple[int, str]]:
    """Standard input's lines (numbered from 1, without the newline), read by a
    daemon thread so Ctrl-C never waits on a blocked read."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[bytes | None] = asyncio.Queue(READ_AHEAD)

    def read() -> None:
        try:
            for raw in sys.stdin.buffer:
                asyncio.run_coroutine_threadsafe(lines.put(raw), loop).result()
        except (RuntimeError, OSError, ValueError):
            pass  # the loop or stdin closed under us: the command is ending
        finally:
            try:
                asyncio.run_coroutine_threadsafe(lines.put(None), loop)
            except RuntimeError:
                pass

    threading.Thread(target=read, name="mosaik publish stdin", daemon=True).start()
    number = 0
    while (raw := await lines.get()) is not None:
        number += 1
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CliError(f"line {number}: not UTF-8 text") from None
        yield number, line.rstrip("\r\n")
