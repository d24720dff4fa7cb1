"""Calls started with Spawn: they run in the scheduler, and their outcome is kept for CallResult.

Bounded: an outcome is kept for KEEP_SECONDS after its call finished, and at most MAX_KEPT calls
(running or finished) are held; past that the oldest finished are dropped first, and a spawn is
refused only when MAX_KEPT calls are all still running.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from protos import stoker_pb2 as pb

KEEP_SECONDS = 3600.0
MAX_KEPT = 10_000


class TooManySpawned(Exception):
    pass


class SpawnedCancelled(Exception):
    """The call was cancelled (FunctionCall.cancel(), or the scheduler stopping) before it finished."""


@dataclass(eq=False)
class _Spawned:
    task: asyncio.Task[pb.CallOutput]
    finished_at: float = 0.0


def _finished(spawned: _Spawned, task: asyncio.Task[pb.CallOutput]) -> None:
    spawned.finished_at = time.monotonic()
    if not task.cancelled():
        task.exception()  # kept for CallResult; retrieved here so asyncio does not log it as lost


class SpawnedCalls:
    def __init__(self, keep_seconds: float = KEEP_SECONDS, max_kept: int = MAX_KEPT) -> None:
        self.keep_seconds = keep_seconds
        self.max_kept = max_kept
        self._calls: dict[str, _Spawned] = {}  # in spawn order

    def start(self, outcome: Callable[[str], Coroutine[Any, Any, pb.CallOutput]]) -> str:
        """Run `outcome(call_id)` as a spawned call, unless too many are held; its call id."""
        self._evict(time.monotonic())
        if len(self._calls) >= self.max_kept:
            raise TooManySpawned(f"{self.max_kept} spawned calls are still running; wait for some to finish")
        call_id = f"fc-{uuid.uuid4().hex}"
        spawned = _Spawned(asyncio.ensure_future(outcome(call_id)))
        spawned.task.set_name(f"spawned-{call_id}")
        spawned.task.add_done_callback(lambda task: _finished(spawned, task))
        self._calls[call_id] = spawned
        return call_id

    def cancel(self, call_id: str) -> bool:
        """Cancel the call if it still runs; False when it had finished. KeyError for an unknown
        or expired id."""
        spawned = self._calls[call_id]
        if spawned.task.done():
            return False
        spawned.task.cancel()
        return True

    async def outcome(self, call_id: str, timeout: float) -> pb.CallOutput:  # noqa: ASYNC109
        """The call's final output (or the exception that ended it). Raises KeyError for an
        unknown or expired id, TimeoutError when it does not finish within `timeout` seconds,
        SpawnedCancelled when it was cancelled."""
        spawned = self._calls[call_id]
        if not spawned.task.done():
            if timeout <= 0:
                raise TimeoutError
            await asyncio.wait({spawned.task}, timeout=timeout)
            if not spawned.task.done():
                raise TimeoutError
        if spawned.task.cancelled():
            raise SpawnedCancelled
        return spawned.task.result()

    def _evict(self, now: float) -> None:
        finished = [(cid, s) for cid, s in self._calls.items() if s.task.done()]
        excess = len(self._calls) - self.max_kept + 1
        for cid, s in finished:
            if now - s.finished_at >= self.keep_seconds or excess > 0:
                del self._calls[cid]
                excess -= 1

    async def close(self) -> None:
        """Cancel the calls still running and wait for them to end. Their CancelledErrors are
        our own cancels, kept in their tasks; a cancel of close() itself still goes on up."""
        tasks = [spawned.task for spawned in self._calls.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
