"""Codecs: how Python values become datum bytes, byte-compatible with Rust.

Each built-in codec matches a Rust type's postcard encoding, so Python and
Rust peers share streams:

====== ==================== =========================
name   Python value         Rust datum (postcard)
====== ==================== =========================
bytes  ``bytes``            ``Vec<u8>`` / ``Bytes``
str    ``str``              ``String``
json   JSON-serialisable    ``String`` holding JSON
raw    ``bytes``, as is     a custom ``Datum`` impl
====== ==================== =========================

Any object with ``encode(obj) -> bytes`` and ``decode(buf) -> obj`` works too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .errors import DecodeError


@runtime_checkable
class Codec(Protocol):
    def encode(self, obj: Any) -> bytes: ...
    def decode(self, buf: bytes) -> Any: ...


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_length_prefixed(buf: bytes) -> bytes:
    """postcard's ``varint(len) ‖ bytes``; trailing bytes are ignored, as postcard does."""
    length = shift = pos = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise DecodeError("truncated length prefix")
        byte = buf[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    if pos + length > len(buf):
        raise DecodeError(f"datum claims {length} bytes, has {len(buf) - pos}")
    return buf[pos : pos + length]


class BytesCodec:
    """``bytes`` <-> Rust ``Vec<u8>``."""

    name = "bytes"

    def encode(self, obj: Any) -> bytes:
        if not isinstance(obj, (bytes, bytearray, memoryview)):
            raise TypeError(f"datum: codec 'bytes' takes bytes, got {type(obj).__name__}")
        data = bytes(obj)
        return _varint(len(data)) + data

    def decode(self, buf: bytes) -> bytes:
        return _read_length_prefixed(buf)


class StrCodec:
    """``str`` <-> Rust ``String``."""

    name = "str"

    def encode(self, obj: Any) -> bytes:
        if not isinstance(obj, str):
            raise TypeError(f"datum: codec 'str' takes str, got {type(obj).__name__}")
        data = obj.encode()
        return _varint(len(data)) + data

    def decode(self, buf: bytes) -> str:
        try:
            return _read_length_prefixed(buf).decode()
        except UnicodeDecodeError as e:
            raise DecodeError(f"datum is not UTF-8: {e}") from None


class JsonCodec:
    """JSON values <-> Rust ``String`` holding JSON."""

    name = "json"

    def encode(self, obj: Any) -> bytes:
        data = _json_text(obj).encode()
        return _varint(len(data)) + data

    def decode(self, buf: bytes) -> Any:
        try:
            return _json_value(_read_length_prefixed(buf).decode())
        except UnicodeDecodeError as e:
            raise DecodeError(f"datum is not UTF-8: {e}") from None


class RawCodec:
    """Frame payloads as they are."""

    name = "raw"

    def encode(self, obj: Any) -> bytes:
        if not isinstance(obj, (bytes, bytearray, memoryview)):
            raise TypeError(f"datum: codec 'raw' takes bytes, got {type(obj).__name__}")
        return bytes(obj)

    def decode(self, buf: bytes) -> bytes:
        return buf


BUILT_IN: dict[str, Codec] = {
    "bytes": BytesCodec(),
    "str": StrCodec(),
    "json": JsonCodec(),
    "raw": RawCodec(),
}


@dataclass(frozen=True)
class Plan:
    """How a codec's work is split between Python and the native core.

    ``framing`` is what the native core adds on send and strips on receive
    (``"bytes"``: postcard ``Vec<u8>``, ``"str"``: postcard ``String``,
    ``"raw"``: nothing); ``encode``/``decode`` run in Python before/after it,
    or not at all when ``None``. The built-in codecs leave Python out of the
    per-datum path; their ``encode``/``decode`` methods stay the reference.
    """

    framing: str
    encode: Callable[[Any], Any] | None
    decode: Callable[[Any], Any] | None


def _json_text(obj: Any) -> str:
    try:
        return json.dumps(obj, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise TypeError(f"datum: codec 'json' cannot encode it: {e}") from None


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise DecodeError(f"datum is not JSON: {e}") from None


def plan(codec: Codec) -> Plan:
    if isinstance(codec, BytesCodec):
        return Plan("bytes", None, None)
    if isinstance(codec, StrCodec):
        return Plan("str", None, None)
    if isinstance(codec, JsonCodec):
        return Plan("str", _json_text, _json_value)
    if isinstance(codec, RawCodec):
        return Plan("raw", None, None)
    return Plan("raw", codec.encode, codec.decode)


def resolve(codec: object) -> Codec:
    if isinstance(codec, str):
        try:
            return BUILT_IN[codec]
        except KeyError:
            raise ValueError(
                f"codec: expected one of {sorted(BUILT_IN)} or an object with encode/decode, "
                f"got {codec!r}"
            ) from None
    if callable(getattr(codec, "encode", None)) and callable(getattr(codec, "decode", None)):
        return codec  # type: ignore[return-value]
    raise TypeError(
        f"codec: expected a codec name or an object with encode/decode, got {type(codec).__name__}"
    )
