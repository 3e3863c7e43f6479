"""Every argument check of the public API, one function per rule.

This module is the one place where arguments are checked: wrong types raise
:class:`TypeError` and bad values :class:`ValueError`, each message starting
with the argument's name. The native module only converts what these checks
let through; the option names (``CHOICES``) come from its tables, so a choice
is listed once. Two kinds of check live elsewhere on purpose: a datum's type
is checked natively on the hot path (``datum: expected bytes, got int``), and
strings that must parse (addresses, ``bind``, relay URLs) are refused by the
parser that reads them, with the argument's name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from ._mosaik import CHOICES


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


def check_optional_bool(name: str, value: object) -> bool | None:
    return None if value is None else check_bool(name, value)


def check_int(name: str, value: object, *, minimum: int) -> int:
    """An int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected int, got {_type_name(value)}")
    if value < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {value}")
    return value


def check_optional_int(name: str, value: object, *, minimum: int) -> int | None:
    return None if value is None else check_int(name, value, minimum=minimum)


def check_port(name: str, value: object) -> int:
    """A TCP or UDP port, 0 (any free port) to 65535."""
    port = check_int(name, value, minimum=0)
    if port > 65535:
        raise ValueError(f"{name}: must be at most 65535, got {port}")
    return port


def check_number(name: str, value: object) -> float:
    """A real number (not a bool), as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {_type_name(value)}")
    return float(value)


def check_seconds(name: str, value: object, *, allow_zero: bool = False) -> float:
    """A finite number of seconds, positive (or, with ``allow_zero``, >= 0)."""
    seconds = check_number(name, value)
    low_ok = seconds >= 0 if allow_zero else seconds > 0
    if not (math.isfinite(seconds) and low_ok):
        rule = "a finite number >= 0" if allow_zero else "a positive, finite number"
        raise ValueError(f"{name}: must be {rule} of seconds, got {value!r}")
    return seconds


def check_seconds_or_zero(name: str, value: object) -> float:
    return check_seconds(name, value, allow_zero=True)


def check_fraction(name: str, value: object) -> float:
    """A number within [0, 1]."""
    fraction = check_number(name, value)
    if not 0 <= fraction <= 1:
        raise ValueError(f"{name}: must be within [0, 1], got {value!r}")
    return fraction


def check_fields(
    obj: object, names: Iterable[str], check: Callable[[str, object], object], prefix: str = ""
) -> None:
    """Runs ``check`` on each named attribute of ``obj``, named ``prefix + name``."""
    for name in names:
        check(prefix + name, getattr(obj, name))


def check_timeout(name: str, value: object) -> float | None:
    """``None`` (no limit) or a positive, finite number of seconds."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number of seconds or None, got {_type_name(value)}")
    return check_seconds(name, value)


def check_choice(name: str, value: object) -> Any:
    """One of the names the native side accepts for option ``name`` (typed
    as the option's ``Literal`` by the caller's signature)."""
    check_str(name, value)
    choices: tuple[str, ...] = CHOICES[name]
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_relay(name: str, value: object) -> str:
    """A named relay choice, or an http(s) URL (parsed natively)."""
    check_str(name, value)
    if value in CHOICES["relay"] or value.startswith(("http://", "https://")):  # type: ignore[attr-defined]
        return value  # type: ignore[return-value]
    named = " or ".join(f'"{choice}"' for choice in CHOICES["relay"])
    raise ValueError(f"{name}: expected {named} or an http(s) URL, got {value!r}")


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


def check_callable(name: str, value: object, what: str) -> Any:
    """``None`` or a callable; ``what`` says what it is called with."""
    if value is not None and not callable(value):
        raise TypeError(f"{name}: expected a callable taking {what}, got {_type_name(value)}")
    return value


def check_instance(name: str, value: object, cls: type, what: str) -> Any:
    """``None`` or an instance of ``cls`` (``what`` names it in the message)."""
    if value is not None and not isinstance(value, cls):
        raise TypeError(f"{name}: expected {what} or None, got {_type_name(value)}")
    return value
