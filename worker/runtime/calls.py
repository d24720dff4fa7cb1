"""Function calls inside a container: run one input, stream what it yields, send its result.

A call opened by a `call` frame runs as its own task on the Exchange stream that carried it. Sync
functions and sync generators run in threads (the loop's executor has one thread per input the
container may be handed), async ones as tasks. Each yielded item takes a credit (protos.asgi
SendWindow), so a fast generator cannot outrun a slow caller. A `cancel` frame for the call's id
means the caller went away: the task is cancelled (a sync function's thread runs on to its end,
but nothing more of a sync generator is pulled).

Past the function's timeout the call fails with FunctionTimeoutError. An async function is
cancelled then; a sync one whose thread runs on retires the container (worker/runtime/retirement.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from client.call_codec import decode_args, encode_value, error_to_proto
from client.exceptions import FunctionTimeoutError, InvalidError
from protos import call_rules
from protos import stoker_pb2 as pb
from protos.asgi import SendWindow
from worker.runtime.retirement import Retirement
from worker.runtime.threads import Threads

log = logging.getLogger(__name__)

_EXHAUSTED = object()


class Call:
    """One function call on a stream."""

    __slots__ = ("id", "out", "task", "threads", "window")

    def __init__(self, call_id: int, out: asyncio.Queue[pb.ResponseFrame | None]) -> None:
        self.id = call_id
        self.out = out
        self.threads = Threads()
        self.window: SendWindow | None = None  # made at the first item a generator yields
        self.task: asyncio.Task[None] | None = None

    def on_frame(self, kind: str | None, frame: pb.RequestFrame) -> None:
        if kind == "credit":
            if self.window is not None:  # no item went out before it, so no credit comes back
                self.window.credit(frame.credit)
        elif kind == "cancel":
            self.hang_up()  # the caller went away

    def hang_up(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def emit(self, output: pb.CallOutput) -> None:
        self.out.put_nowait(pb.ResponseFrame(id=self.id, output=output))

    async def emit_item(self, value: Any) -> None:
        if self.window is None:
            self.window = SendWindow()
        await self.window.acquire()  # never closed: a call whose caller left is cancelled instead
        self.emit(pb.CallOutput(item=encode_value(value, "an item the generator yielded")))


@dataclass(frozen=True)
class Callee:
    """What a call runs: a function, or a method bound to the container's instance."""

    name: str  # for messages: `square`, or `Model.predict`
    f: Callable[..., Any]
    is_generator: bool
    timeout: float


def timeout_message(name: str, timeout: float) -> str:
    """The words a call or request past its timeout fails with."""
    return f"{name} exceeded its timeout of {timeout:g} s (set with timeout= on its decorator)"


def check_call_kind(function: Callee, wants_generator: bool) -> None:
    """Modal's rule, checked again where the code runs: a generator is called with remote_gen,
    any other function with remote. (The scheduler refuses calls to web functions.)"""
    refusal = call_rules.call_kind_refusal(function.name, function.is_generator, wants_generator)
    if refusal is not None:
        raise InvalidError(refusal)


async def run_call(function: Callee, call: Call, request: pb.CallRequest, retirement: Retirement) -> None:
    """Run the call to its end, sending its items and then its result or error."""
    deadline: asyncio.Timeout | None = None
    try:
        check_call_kind(function, request.generator)
        args, kwargs = decode_args(request.args)
        async with asyncio.timeout(function.timeout) as deadline:
            result = await _invoke(function, call, args, kwargs)
        payload = encode_value(result, "the function's return value")
    except TimeoutError as exc:
        error: Exception = exc
        if deadline is not None and deadline.expired():  # ours, not one the function raised
            error = FunctionTimeoutError(timeout_message(function.name, function.timeout))
            log.warning("call %s: %s", call.id, error)
            if call.threads.abandoned:
                retirement.retire(call.out, call.id, str(error))
        call.emit(pb.CallOutput(error=error_to_proto(error)))
    except Exception as exc:
        log.info("call %s of %s raised %s: %s", call.id, function.name, type(exc).__name__, exc)
        call.emit(pb.CallOutput(error=error_to_proto(exc)))
    else:
        call.emit(pb.CallOutput(result=payload))


async def _invoke(function: Callee, call: Call, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    f = function.f
    if inspect.isasyncgenfunction(f):
        async with contextlib.aclosing(f(*args, **kwargs)) as items:
            async for item in items:
                await call.emit_item(item)
        return None
    if inspect.isgeneratorfunction(f):
        generator: Generator[Any, Any, Any] = f(*args, **kwargs)
        try:
            while (item := await call.threads.run(next, generator, _EXHAUSTED)) is not _EXHAUSTED:
                await call.emit_item(item)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(generator.close)
        return None
    if inspect.iscoroutinefunction(f):
        return await f(*args, **kwargs)
    return await call.threads.run(functools.partial(f, *args, **kwargs))
