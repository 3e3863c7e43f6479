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
from typing import Any, Literal, Protocol, runtime_checkable

from ._mosaik import decode_datum, encode_datum
from .errors import DecodeError


@runtime_checkable
class Codec(Protocol):
    def encode(self, obj: Any) -> bytes: ...
    def decode(self, buf: bytes) -> Any: ...


class BytesCodec:
    """``bytes`` <-> Rust ``Vec<u8>``."""

    name = "bytes"

    def encode(self, obj: Any) -> bytes:
        return encode_datum("bytes", obj)

    def decode(self, buf: bytes) -> bytes:
        return decode_datum("bytes", buf)  # type: ignore[no-any-return]


class StrCodec:
    """``str`` <-> Rust ``String``."""

    name = "str"

    def encode(self, obj: Any) -> bytes:
        return encode_datum("str", obj)

    def decode(self, buf: bytes) -> str:
        return decode_datum("str", buf)  # type: ignore[no-any-return]


class JsonCodec:
    """JSON values <-> Rust ``String`` holding JSON."""

    name = "json"

    def encode(self, obj: Any) -> bytes:
        return encode_datum("str", _json_text(obj))

    def decode(self, buf: bytes) -> Any:
        return _json_value(decode_datum("str", buf))


class RawCodec:
    """Frame payloads as they are."""

    name = "raw"

    def encode(self, obj: Any) -> bytes:
        return encode_datum("raw", obj)

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

    ``layout`` is what the native core adds on send and strips on receive
    (``"bytes"``: postcard ``Vec<u8>``, ``"str"``: postcard ``String``,
    ``"raw"``: nothing); ``encode``/``decode`` run in Python before/after it,
    or not at all when ``None``. The built-in codecs leave Python out of the
    per-datum path; their ``encode``/``decode`` methods stay the reference.
    """

    layout: Literal["raw", "bytes", "str"]
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
