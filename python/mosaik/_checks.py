"""Argument checks shared by the public API: clear errors naming the argument."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _type_name(value: object) -> str:
    return type(value).__name__


def check_str(name: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected str, got {_type_name(value)}")
    if not allow_empty and not value:
        raise ValueError(f"{name}: must not be empty")
    return value


def check_optional_str(name: str, value: object) -> str | None:
    return None if value is None else check_str(name, value)


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected bool, got {_type_name(value)}")
    return value


def check_str_list(name: str, value: object) -> list[str]:
    """An iterable of non-empty strings; a bare string is refused, not split."""
    if isinstance(value, (str, bytes)):
        raise TypeError(
            f"{name}: expected an iterable of str, got a single {_type_name(value)} "
            f"{value!r}; wrap it, e.g. ({value!r},)"
        )
    if not isinstance(value, Iterable):
        raise TypeError(f"{name}: expected an iterable of str, got {_type_name(value)}")
    items: list[Any] = list(value)
    for item in items:
        check_str(f"{name} item", item)
    return items


def check_secret_key(name: str, value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name}: expected 32 bytes or None, got {_type_name(value)}")
    key = bytes(value)
    if len(key) != 32:
        raise ValueError(f"{name}: expected 32 bytes (an Ed25519 seed), got {len(key)}")
    return key


def check_timeout(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number of seconds or None, got {_type_name(value)}")
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"{name}: must be a positive, finite number of seconds, got {value!r}")
    return float(value)
