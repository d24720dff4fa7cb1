"""User code in threads, and what is left of it when an input or hook runs past its timeout.

An async function is cancelled at its timeout; a sync one running in a thread cannot be: Python
has no way to stop a thread. `Threads.run` awaits it like `asyncio.to_thread`, and when the
awaiting task is cancelled while the code still runs, it remembers the thread as abandoned: its
owner then knows the input did not stop (the container is replaced, worker/runtime/retirement.py),
and the container's main program knows not to wait for the thread when it exits.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class _Run:
    __slots__ = ("finished", "started")

    def __init__(self) -> None:
        self.started = False
        self.finished = False


_abandoned: set[_Run] = set()  # process-wide: threads are


def still_running() -> int:
    """How many abandoned threads still run user code."""
    return sum(1 for run in list(_abandoned) if not run.finished)


class Threads:
    """The threads one input (or one container's enter hooks) runs user code in."""

    __slots__ = ("abandoned",)

    def __init__(self) -> None:
        self.abandoned = False  # cancelled while a thread still ran its code, which runs on

    async def run(self, f: Callable[..., T], *args: Any) -> T:
        run = _Run()

        def body() -> T:
            run.started = True
            try:
                return f(*args)
            finally:
                run.finished = True
                _abandoned.discard(run)

        try:
            return await asyncio.to_thread(body)
        except asyncio.CancelledError:
            if run.started and not run.finished:
                self.abandoned = True
                _abandoned.add(run)
            raise


# The threads of the web request being served, in its task's context: a sync FastAPI endpoint runs
# in them (worker/runtime/web.py), so that its request knows when the endpoint could not be stopped.
request_threads: contextvars.ContextVar[Threads | None] = contextvars.ContextVar("request_threads", default=None)
