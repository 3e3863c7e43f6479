"""Datum layout and process memory, shared by every bench worker.

A datum is ``size`` bytes: a little-endian u64 sequence number, then a
``CLOCK_MONOTONIC`` time in nanoseconds, then zeros. Paced (latency) datums
carry their own send time; the pool an unpaced producer cycles carries the
producer's start time, on which consumers place their measuring windows.
``time.monotonic_ns()`` and the native peer read the same clock, shared by
all local processes.
"""

from __future__ import annotations

import asyncio
import struct
import time
from pathlib import Path

#: Sequence number and send timestamp at the start of every datum.
HEADER = 16
#: Distinct pre-built datums an unpaced producer cycles through (the native
#: peer uses the same pool), so throughput rows measure the transport, not
#: payload building.
POOL = 1024
#: Upper bound of one pool's memory: 1 MiB datums get a pool of 64.
POOL_BYTES = 64 << 20

_HEADER = struct.Struct("<QQ")


def pool_of(size: int, started_ns: int) -> list[bytes]:
    """Pre-built datums of ``size`` bytes, distinct sequence numbers, all
    stamped with the producer's start time."""
    if size < HEADER:
        raise ValueError(f"size: must be at least {HEADER} bytes, got {size}")
    count = max(1, min(POOL, POOL_BYTES // size))
    padding = bytes(size - HEADER)
    return [_HEADER.pack(seq, started_ns) + padding for seq in range(count)]


async def sleep_until(t_ns: int) -> None:
    """Sleeps until monotonic time ``t_ns`` (at once if it has passed)."""
    await asyncio.sleep(max(0.0, (t_ns - time.monotonic_ns()) / 1e9))


def stamped(seq: int, size: int) -> bytes:
    """A datum carrying ``seq`` and the current monotonic time."""
    return _HEADER.pack(seq, time.monotonic_ns()) + bytes(size - HEADER)


def sent_at(datum: bytes) -> int:
    """The send time stamped into a datum."""
    return int.from_bytes(datum[8:HEADER], "little")


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size of a process (this one by default), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")
