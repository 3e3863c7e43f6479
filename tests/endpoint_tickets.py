"""Test helper: read and write iroh ``endpoint…`` tickets by hand.

Lets tests check what an address advertises, and build addresses of peers
that do not exist (a black hole that never answers), independently of the
code under test.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass

PREFIX = "endpoint"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


@dataclass
class Ticket:
    peer_id: str
    relays: list[str]
    ips: list[str]  # "ip:port"


def decode(ticket: str) -> Ticket:
    assert ticket.startswith(PREFIX), ticket
    text = ticket[len(PREFIX) :].upper()
    data = base64.b32decode(text + "=" * (-len(text) % 8))
    assert data[0] == 0, "ticket variant 1"
    peer_id = data[1:33].hex()
    count, pos = _read_varint(data, 33)
    relays: list[str] = []
    ips: list[str] = []
    for _ in range(count):
        kind, pos = _read_varint(data, pos)
        if kind == 0:  # Relay(url)
            length, pos = _read_varint(data, pos)
            relays.append(data[pos : pos + length].decode())
            pos += length
        elif kind == 1:  # Ip(SocketAddr)
            family, pos = _read_varint(data, pos)
            size = 4 if family == 0 else 16
            ip = ipaddress.ip_address(data[pos : pos + size])
            pos += size
            port, pos = _read_varint(data, pos)
            ips.append(f"{ip}:{port}" if family == 0 else f"[{ip}]:{port}")
        else:
            raise AssertionError(f"unexpected transport kind {kind}")
    return Ticket(peer_id, relays, ips)


def encode(peer_id: str, ipv4s: list[tuple[str, int]], relays: tuple[str, ...] = ()) -> str:
    """A ticket for ``peer_id`` reachable (supposedly) at the given relays and IPv4 addresses."""
    data = bytearray(b"\x00")
    data += bytes.fromhex(peer_id)
    data += _varint(len(relays) + len(ipv4s))
    for url in sorted(relays):  # Relay (variant 0) sorts before Ip (variant 1)
        raw = url.encode()
        data += b"\x00" + _varint(len(raw)) + raw
    for ip, port in sorted(ipv4s):
        data += b"\x01\x00" + ipaddress.IPv4Address(ip).packed + _varint(port)
    return PREFIX + base64.b32encode(bytes(data)).decode().rstrip("=").lower()
