"""Modal's `.aio` forms of blocking SDK methods: `await f.remote.aio(...)`,
`async for x in f.remote_gen.aio(...)`, `await call.get.aio()`.

The blocking call runs in a thread, so async code (an `async def` endpoint, say) keeps its event
loop free while a remote call is under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

_DONE = object()


class _Bound:
    """A method bound to its object: call it to block, or use `.aio` to await it."""

    __slots__ = ("_iterates", "_method")

    def __init__(self, method: Callable[..., Any], iterates: bool) -> None:
        self._method = method
        self._iterates = iterates

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._method(*args, **kwargs)

    def aio(self, *args: Any, **kwargs: Any) -> Any:
        if self._iterates:
            return _iterate_in_threads(self._method(*args, **kwargs))
        return asyncio.to_thread(self._method, *args, **kwargs)


class _WithAio:
    def __init__(self, method: Callable[..., Any], iterates: bool) -> None:
        self._method = method
        self._iterates = iterates
        self.__doc__ = method.__doc__
        self.__wrapped__ = method

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return _Bound(functools.partial(self._method, instance), self._iterates)


def awaitable(method: Callable[..., Any]) -> Any:
    """The method, with `.aio` returning an awaitable of its result."""
    return _WithAio(method, iterates=False)


def async_iterable(method: Callable[..., Any]) -> Any:
    """The method (which returns an iterator), with `.aio` returning an async iterator."""
    return _WithAio(method, iterates=True)


async def _iterate_in_threads(iterator: Iterator[Any]) -> AsyncIterator[Any]:
    try:
        while (item := await asyncio.to_thread(next, iterator, _DONE)) is not _DONE:
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):  # still running in a thread if we were cancelled
                await asyncio.to_thread(close)
