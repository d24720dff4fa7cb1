"""`@modal.batched` inside a container: inputs collected into batches, the function called once
per batch.

Each call's task (worker/runtime/exchange.py) hands its input to the function's Batcher and
waits for its own output. A batch goes when max_batch_size inputs are in, or wait_ms after its
first one arrived. It runs as a task of the Batcher, under its first input's ids
(client/execution_context.py, as on Modal), within the function's timeout, with a list per
parameter; the result must be a list with one value per input, in their order. An exception, or a
result of the wrong shape, fails every input of the batch. An input whose caller leaves before
its batch goes is taken out of it; a batch whose callers have all left is cancelled.

The scheduler gives a batched function's containers max_batch_size slots (scheduler/model.py),
so a batch can fill.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from client.batching import BatchConfig
from client.call_codec import decode_args, encode_value, error_to_proto
from client.exceptions import FunctionTimeoutError, InvalidError
from client.execution_context import enter_input
from protos import call_rules
from protos import stoker_pb2 as pb
from worker.runtime.calls import Call, Callee, timeout_message
from worker.runtime.retirement import Retirement
from worker.runtime.threads import Threads

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchedCallee:
    name: str  # for messages: `embed`, or `Model.embed`
    f: Callable[..., Any]  # takes a list per parameter; a method is bound to the container's instance
    batch: BatchConfig
    timeout: float


@dataclass(eq=False)
class _Input:
    arguments: dict[str, Any]  # by parameter name
    context: pb.CallContext
    output: asyncio.Future[pb.CallOutput]
    call: Call
    batch: list[_Input] | None = None  # the batch it went in; None while it waits for one
    batch_task: asyncio.Task[None] | None = field(default=None, repr=False)


class Batcher:
    """The inputs of one batched function (or method), gathered into batches."""

    def __init__(self, callee: BatchedCallee) -> None:
        self.callee = callee
        self._signature = inspect.signature(callee.f)
        self._pending: list[_Input] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._retirement: Retirement | None = None  # the container's; known from the first input

    async def run(self, call: Call, request: pb.CallRequest, retirement: Retirement) -> None:
        """Run the call's input in a batch, and send its result or error."""
        self._retirement = retirement
        try:
            refusal = call_rules.call_kind_refusal(self.callee.name, False, request.generator)
            if refusal is not None:
                raise InvalidError(refusal)
            args, kwargs = decode_args(request.args)
            arguments = self._bind(args, kwargs)
        except Exception as exc:  # this input's mistake: it fails alone
            call.emit(pb.CallOutput(error=error_to_proto(exc)))
            return
        item = _Input(arguments, request.context, asyncio.get_running_loop().create_future(), call)
        item.output.add_done_callback(lambda _: self._left(item))
        self._add(item)
        call.emit(await item.output)  # a cancel of the call cancels the future: _left() then

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(self._signature.bind(*args, **kwargs).arguments)
        except TypeError as exc:
            names = ", ".join(self._signature.parameters)
            raise InvalidError(
                f"{self.callee.name} is batched: call it with one value for each of its parameters ({names}); {exc}"
            ) from None

    def _add(self, item: _Input) -> None:
        self._pending.append(item)
        if len(self._pending) >= self.callee.batch.max_batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.callee.batch.wait_ms / 1000, self._flush)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if not batch:
            return
        context = contextvars.copy_context()
        context.run(enter_input, batch[0].context.function_call_id, batch[0].context.input_id)
        task = asyncio.get_running_loop().create_task(
            self._run_batch(batch), name=f"batch-{self.callee.name}", context=context
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        for item in batch:
            item.batch, item.batch_task = batch, task

    def _left(self, item: _Input) -> None:
        """The input's output is done: given, or cancelled because its caller left."""
        if not item.output.cancelled():
            return
        if item.batch is None:
            self._pending.remove(item)
            if not self._pending and self._timer is not None:
                self._timer.cancel()
                self._timer = None
        elif item.batch_task is not None and all(i.output.cancelled() for i in item.batch):
            item.batch_task.cancel()  # nobody waits for this batch any more

    async def _run_batch(self, batch: list[_Input]) -> None:
        callee = self.callee
        deadline: asyncio.Timeout | None = None
        threads = Threads()
        try:
            lists = {name: [item.arguments[name] for item in batch] for name in self._signature.parameters}
            async with asyncio.timeout(callee.timeout) as deadline:
                result = await self._invoke(lists, threads)
            outputs = self._outputs(result, len(batch))
        except TimeoutError as exc:
            error: BaseException = exc
            if deadline is not None and deadline.expired():  # ours, not one the function raised
                error = FunctionTimeoutError(timeout_message(callee.name, callee.timeout))
                log.warning("a batch of %d inputs: %s", len(batch), error)
                if threads.abandoned and self._retirement is not None:  # its thread runs on: replace the container
                    self._retirement.retire(batch[0].call.out, batch[0].call.id, str(error))
            outputs = [pb.CallOutput(error=error_to_proto(error))] * len(batch)
        except Exception as exc:
            log.info("a batch of %d inputs of %s raised %s: %s", len(batch), callee.name, type(exc).__name__, exc)
            outputs = [pb.CallOutput(error=error_to_proto(exc))] * len(batch)
        for item, output in zip(batch, outputs, strict=True):
            if not item.output.done():
                item.output.set_result(output)

    async def _invoke(self, lists: dict[str, list[Any]], threads: Threads) -> Any:
        f = self.callee.f
        if inspect.iscoroutinefunction(f):
            return await f(**lists)
        return await threads.run(functools.partial(f, **lists))

    def _outputs(self, result: Any, inputs: int) -> list[pb.CallOutput]:
        """One output per input from the batch's result; InvalidError when it is no list of that length."""
        name = self.callee.name
        if not isinstance(result, list):
            raise InvalidError(
                f"Output of batched function {name} must be a list (one result per input), not {type(result).__name__}."
            )
        if len(result) != inputs:
            raise InvalidError(
                f"Output of batched function {name} must be a list of equal length as its inputs: "
                f"it returned {len(result)} results for a batch of {inputs} inputs."
            )
        outputs = []
        for value in result:
            try:
                outputs.append(pb.CallOutput(result=encode_value(value, "a result of the batched function")))
            except Exception as exc:  # that one result fails alone (too large, does not pickle)
                outputs.append(pb.CallOutput(error=error_to_proto(exc)))
        return outputs


def callee_for(
    name: str, f: Callable[..., Any], is_generator: bool, timeout: float, batch: BatchConfig | None
) -> Callee | Batcher:
    """What a call of this function runs: the function for each input, or its batches."""
    if batch is None:
        return Callee(name, f, is_generator, timeout)
    return Batcher(BatchedCallee(name, f, batch, timeout))
