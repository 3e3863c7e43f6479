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

A Rust type name is a codec too: ``"i64"``, ``"u64"``, ``"bool"``, ``"f64"``,
``"()"`` (and ``"u8"`` ... ``"i32"``) encode one value of that type as postcard
does, so group commands and stream datums match a Rust peer's ``i64`` (say).
``"str"`` and ``"bytes"`` already are ``String`` and ``Vec<u8>``.

Any object with ``encode(obj) -> bytes`` and ``decode(buf) -> obj`` works too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from ._mosaik import CHOICES, decode_datum, decode_value, encode_datum, encode_value
from .errors import DecodeError


@runtime_checkable
class Codec(Protocol):
    def encode(self, obj: Any) -> bytes: ...
    def decode(self, buf: bytes) -> Any: ...


Layout = Literal["raw", "bytes", "str"]


class _NativeLayout:
    """A codec that is exactly one of the native datum layouts."""

    name: str
    layout: Layout

    def encode(self, obj: Any) -> bytes:
        return encode_datum(self.layout, obj)

    def decode(self, buf: bytes) -> Any:
        return decode_datum(self.layout, buf)


class BytesCodec(_NativeLayout):
    """``bytes`` <-> Rust ``Vec<u8>``."""

    name = layout = "bytes"


class StrCodec(_NativeLayout):
    """``str`` <-> Rust ``String``."""

    name = layout = "str"


class RawCodec(_NativeLayout):
    """Frame payloads as they are."""

    name = layout = "raw"


class JsonCodec:
    """JSON values <-> Rust ``String`` holding JSON (natively laid out as ``str``)."""

    name = "json"

    def encode(self, obj: Any) -> bytes:
        return encode_datum("str", _json_text(obj))

    def decode(self, buf: bytes) -> Any:
        return _json_value(decode_datum("str", buf))


class RustTypeCodec:
    """One value of a Rust type, by its name (``"i64"``), as postcard encodes it."""

    def __init__(self, type_name: str) -> None:
        self.name = type_name

    def encode(self, obj: Any) -> bytes:
        try:
            return encode_value(self.name, obj)
        except (TypeError, ValueError) as e:
            # Named as every codec names what it cannot encode.
            message = str(e).removeprefix("value: ")
            raise type(e)(f"datum: {message}") from None

    def decode(self, buf: bytes) -> Any:
        return decode_value(self.name, buf)

    def __repr__(self) -> str:
        return f"RustTypeCodec({self.name!r})"


BUILT_IN: dict[str, Codec] = {
    "bytes": BytesCodec(),
    "str": StrCodec(),
    "json": JsonCodec(),
    "raw": RawCodec(),
}
#: Rust type names ("str" and "bytes" are the codecs above).
for _type_name in CHOICES["type_name"]:
    BUILT_IN.setdefault(_type_name, RustTypeCodec(_type_name))


@dataclass(frozen=True)
class Plan:
    """How a codec's work is split between Python and the native core.

    ``layout`` is what the native core adds on send and strips on receive
    (``"bytes"``: postcard ``Vec<u8>``, ``"str"``: postcard ``String``,
    ``"raw"``: nothing); ``encode``/``decode`` run in Python before/after it,
    or not at all when ``None``. The built-in codecs leave Python out of the
    per-datum path; their ``encode``/``decode`` methods stay the reference.
    """

    layout: Layout
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
    if isinstance(codec, _NativeLayout):
        return Plan(codec.layout, None, None)
    if isinstance(codec, JsonCodec):
        return Plan("str", _json_text, _json_value)
    return Plan("raw", codec.encode, codec.decode)


def name_of(codec: Codec) -> str:
    """How a codec is shown: its ``name``, or its class name."""
    name = getattr(codec, "name", None)
    return name if isinstance(name, str) else type(codec).__name__


def resolve(codec: object, argument: str = "codec") -> Codec:
    if isinstance(codec, str):
        try:
            return BUILT_IN[codec]
        except KeyError:
            raise ValueError(
                f"{argument}: expected one of {sorted(BUILT_IN)} or an object with encode/decode, "
                f"got {codec!r}"
            ) from None
    if callable(getattr(codec, "encode", None)) and callable(getattr(codec, "decode", None)):
        return codec  # type: ignore[return-value]
    raise TypeError(
        f"{argument}: expected a codec name or an object with encode/decode, "
        f"got {type(codec).__name__}"
    )
