"""What the Python handles (a network, a producer, a consumer, and the
subsystems to come) share: ``async with`` closes them, and their plain
attributes are read from the native handle they wrap (``self._native``);
``Live`` lists the handles still alive."""

from __future__ import annotations

import itertools
import weakref
from typing import Any, Generic, TypeVar, overload

_Self = TypeVar("_Self", bound="Closing")
_T = TypeVar("_T")


class Closing:
    """A resource closed by ``await close()`` or by leaving ``async with``."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Native(Generic[_T]):
    """A read-only attribute that is the native handle's attribute ``name``
    (by default the same name): ``stream_id = Native[str]("the stream's id")``."""

    def __init__(self, doc: str = "", *, name: str | None = None) -> None:
        self.__doc__ = doc
        self._native_name = name

    def __set_name__(self, owner: type, name: str) -> None:
        if self._native_name is None:
            self._native_name = name

    @overload
    def __get__(self, obj: None, owner: type) -> Native[_T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> _T: ...
    def __get__(self, obj: object, owner: type) -> Any:
        if obj is None:
            return self
        return getattr(obj._native, self._native_name)  # type: ignore[attr-defined, arg-type]


class Live(Generic[_T]):
    """Handles held weakly, in the order they were made: a handle the program
    dropped leaves on its own. ``items()`` may be called from any thread (a
    metrics scrape runs on the HTTP server's): it copies the references in
    one step, so a handle added or dropped meanwhile cannot break it."""

    def __init__(self) -> None:
        self._refs: dict[int, weakref.ref[_T]] = {}
        self._next = itertools.count()

    def add(self, item: _T) -> _T:
        key = next(self._next)
        refs = self._refs
        self._refs[key] = weakref.ref(item, lambda _: refs.pop(key, None))
        return item

    def items(self) -> list[_T]:
        return [item for ref in tuple(self._refs.values()) if (item := ref()) is not None]
