"""@modal.batched: Modal's rules at decoration time, and the container's Batcher (batches fill to
max_batch_size or go wait_ms after their first input; callers who leave are taken out)."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest

import client as modal
from client.batching import BatchConfig
from client.call_codec import decode_value, encode_args
from client.exceptions import InvalidError
from protos import stoker_pb2 as pb
from tests.unit.conftest import AppFactory
from worker.runtime.batching import BatchedCallee, Batcher
from worker.runtime.calls import Call, timeout_message
from worker.runtime.retirement import Retirement

# ---------------------------------------------------------------- Modal's rules


@pytest.mark.parametrize(
    ("size", "wait", "message"),
    [
        (0, 10, "max_batch_size must be a positive integer."),
        (1001, 10, "max_batch_size cannot be greater than 1000."),
        (4, -1, "wait_ms must be a non-negative integer."),
        (4, 600_001, "wait_ms cannot be greater than 600000"),
    ],
)
def test_sizes_and_waits_out_of_range_are_refused(size: int, wait: int, message: str) -> None:
    with pytest.raises(InvalidError, match=re.escape(message)):
        modal.batched(max_batch_size=size, wait_ms=wait)


def test_the_limits_themselves_are_accepted(make_app: AppFactory) -> None:
    f = make_app().function()(modal.batched(max_batch_size=1000, wait_ms=600_000)(lambda xs: xs))
    spec = f.to_proto()
    assert (spec.batch_max_size, spec.batch_wait_ms) == (1000, 600_000)


def test_generators_and_default_arguments_cannot_be_batched() -> None:
    def gen(xs: list[int]) -> Any:
        yield xs

    def defaults(xs: list[int], ys: list[int] | None = None) -> list[int]:
        return xs

    def star(*xs: Any) -> list[Any]:
        return list(xs)

    with pytest.raises(InvalidError, match="Modal batched function gen cannot return generators"):
        modal.batched(max_batch_size=2, wait_ms=1)(gen)
    with pytest.raises(InvalidError, match="Modal batched function defaults does not accept default arguments"):
        modal.batched(max_batch_size=2, wait_ms=1)(defaults)
    with pytest.raises(InvalidError, match=r"\*xs cannot be batched"):
        modal.batched(max_batch_size=2, wait_ms=1)(star)


def test_batched_combines_with_neither_concurrent_nor_web_decorators_in_either_order() -> None:
    def f(xs: list[int]) -> list[int]:
        return xs

    batch = modal.batched(max_batch_size=2, wait_ms=1)
    with pytest.raises(InvalidError, match=re.escape("cannot be combined with @modal.concurrent")):
        batch(modal.concurrent(max_inputs=2)(f))
    with pytest.raises(InvalidError, match=re.escape("cannot be combined with @modal.concurrent")):
        modal.concurrent(max_inputs=2)(batch(f))
    with pytest.raises(InvalidError, match=re.escape("cannot be combined with web interface decorators")):
        modal.fastapi_endpoint()(batch(f))
    with pytest.raises(InvalidError, match=re.escape("cannot be combined with web interface decorators")):
        batch(modal.fastapi_endpoint()(f))
    with pytest.raises(InvalidError, match=re.escape("Cannot apply `@modal.batched` to a class")):
        batch(type("C", (), {}))


def test_batched_with_the_old_allow_concurrent_inputs_is_refused(make_app: AppFactory) -> None:
    def f(xs: list[int]) -> list[int]:
        return xs

    with pytest.raises(InvalidError, match="cannot be combined with allow_concurrent_inputs"):
        make_app().function(allow_concurrent_inputs=4)(modal.batched(max_batch_size=2, wait_ms=1)(f))


def test_a_batched_method_is_the_only_method_of_its_class(make_app: AppFactory) -> None:
    batch = modal.batched(max_batch_size=2, wait_ms=1)

    class Alone:
        @batch
        def embed(self, xs: list[str]) -> list[str]:
            return xs

    cls = make_app().cls()(Alone)
    [method] = cls.to_proto().methods
    assert (method.name, method.batch_max_size, method.batch_wait_ms) == ("embed", 2, 1)

    class Two:
        @batch
        def embed(self, xs: list[str]) -> list[str]:
            return xs

        @batch
        def other(self, xs: list[str]) -> list[str]:
            return xs

    class Mixed:
        @batch
        def embed(self, xs: list[str]) -> list[str]:
            return xs

        @modal.method()
        def plain(self, x: str) -> str:
            return x

    class Concurrent:
        @batch
        def embed(self, xs: list[str]) -> list[str]:
            return xs

    with pytest.raises(InvalidError, match=re.escape("Modal class Two can only have one batched function.")):
        make_app().cls()(Two)
    with pytest.raises(InvalidError, match="Modal class Mixed with a modal batched function cannot have other"):
        make_app().cls()(Mixed)
    with pytest.raises(InvalidError, match=r"cannot be combined with @modal.concurrent \(class Concurrent\)"):
        make_app().cls()(modal.concurrent(max_inputs=4)(Concurrent))


# ---------------------------------------------------------------- the container's batches


class Caller:
    """One single-input call into a Batcher, as the exchange makes it."""

    def __init__(
        self, batcher: Batcher, call_id: int, *args: Any, generator: bool = False, retirement: Retirement | None = None
    ) -> None:
        self.out: asyncio.Queue[pb.ResponseFrame | None] = asyncio.Queue()
        self.retirement = retirement or Retirement(asyncio.Event(), bound=60)
        request = pb.CallRequest(args=encode_args(args, {}), generator=generator)
        request.context.function_call_id = f"fc-{call_id}"
        request.context.input_id = f"in-{call_id}"
        self.task = asyncio.ensure_future(batcher.run(Call(call_id, self.out), request, self.retirement))

    async def output(self) -> Any:
        await self.task
        frame = self.out.get_nowait()
        while frame is not None and frame.WhichOneof("kind") == "retiring":
            frame = self.out.get_nowait()
        assert frame is not None
        if frame.output.WhichOneof("kind") == "error":
            return ("error", frame.output.error.type, frame.output.error.message)
        return decode_value(frame.output.result)


def batcher(f: Any, size: int = 3, wait_ms: int = 50, timeout: float = 30) -> Batcher:
    return Batcher(BatchedCallee("f", f, BatchConfig(size, wait_ms), timeout))


def test_a_full_batch_goes_at_once_and_each_caller_gets_its_own_result() -> None:
    seen: list[list[int]] = []

    async def f(xs: list[int], ys: list[int]) -> list[int]:
        seen.append(list(xs))
        return [x * y for x, y in zip(xs, ys, strict=True)]

    async def scenario() -> None:
        b = batcher(f, size=3, wait_ms=600_000)  # it never waits: full batches go at once
        callers = [Caller(b, i, i, 10) for i in range(6)]
        assert [await c.output() for c in callers] == [0, 10, 20, 30, 40, 50]
        assert seen == [[0, 1, 2], [3, 4, 5]]

    asyncio.run(scenario())


def test_a_partial_batch_goes_wait_ms_after_its_first_input() -> None:
    seen: list[list[int]] = []

    def f(xs: list[int]) -> list[int]:  # a sync function runs in a thread
        seen.append(list(xs))
        return xs

    async def scenario() -> None:
        b = batcher(f, size=10, wait_ms=20)
        first, second = Caller(b, 1, 1), Caller(b, 2, 2)
        assert [await first.output(), await second.output()] == [1, 2]
        third = Caller(b, 3, 3)
        assert await third.output() == 3
        assert seen == [[1, 2], [3]]

    asyncio.run(scenario())


def test_an_exception_or_a_wrong_result_fails_every_input_of_the_batch() -> None:
    async def raises(xs: list[int]) -> list[int]:
        raise ValueError(f"bad batch {xs}")

    async def too_short(xs: list[int]) -> list[int]:
        return xs[1:]

    async def not_a_list(xs: list[int]) -> tuple[int, ...]:
        return tuple(xs)

    async def scenario() -> None:
        b = batcher(raises, size=2)
        callers = [Caller(b, 1, 1), Caller(b, 2, 2)]
        assert [await c.output() for c in callers] == [("error", "builtins.ValueError", "bad batch [1, 2]")] * 2
        b = batcher(too_short, size=2)
        callers = [Caller(b, 1, 1), Caller(b, 2, 2)]
        for c in callers:
            _, type_name, message = await c.output()
            assert type_name == "client.exceptions.InvalidError"
            assert message.endswith("it returned 1 results for a batch of 2 inputs.")
        b = batcher(not_a_list, size=1)
        assert (await Caller(b, 1, 1).output())[2].startswith("Output of batched function f must be a list")

    asyncio.run(scenario())


def test_a_malformed_input_fails_alone() -> None:
    async def f(xs: list[int]) -> list[int]:
        return xs

    async def scenario() -> None:
        b = batcher(f, size=2, wait_ms=10)
        bad, good = Caller(b, 1, 1, 2), Caller(b, 2, 5)
        _, type_name, message = await bad.output()
        assert type_name == "client.exceptions.InvalidError" and "one value for each of its parameters (xs)" in message
        assert await good.output() == 5
        gen = Caller(b, 3, 1, generator=True)
        assert "call it with .remote(), not .remote_gen()" in (await gen.output())[2]

    asyncio.run(scenario())


def test_a_caller_who_leaves_before_its_batch_goes_is_taken_out() -> None:
    seen: list[list[int]] = []

    async def f(xs: list[int]) -> list[int]:
        seen.append(list(xs))
        return xs

    async def scenario() -> None:
        b = batcher(f, size=3, wait_ms=50)
        leaving, staying = Caller(b, 1, 1), Caller(b, 2, 2)
        await asyncio.sleep(0)
        leaving.task.cancel()
        assert await staying.output() == 2
        assert seen == [[2]]

    asyncio.run(scenario())


def test_a_batch_whose_callers_all_left_is_cancelled() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def f(xs: list[int]) -> list[int]:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return xs

    async def scenario() -> None:
        b = batcher(f, size=2)
        callers = [Caller(b, 1, 1), Caller(b, 2, 2)]
        await started.wait()
        callers[0].task.cancel()
        await asyncio.sleep(0.01)
        assert not cancelled.is_set()  # one caller still waits for it
        callers[1].task.cancel()
        await asyncio.wait_for(cancelled.wait(), 5)

    asyncio.run(scenario())


def test_a_batch_runs_under_its_first_inputs_ids() -> None:
    async def f(xs: list[int]) -> list[str | None]:
        return [modal.current_input_id()] * len(xs)

    async def scenario() -> None:
        b = batcher(f, size=2)
        callers = [Caller(b, 7, 1), Caller(b, 8, 2)]
        assert [await c.output() for c in callers] == ["in-7", "in-7"]

    asyncio.run(scenario())


def test_a_batch_past_its_timeout_fails_each_input() -> None:
    async def f(xs: list[int]) -> list[int]:
        await asyncio.sleep(60)
        return xs

    async def scenario() -> None:
        b = batcher(f, size=1, timeout=0.05)
        caller = Caller(b, 1, 1)
        expected = ("client.exceptions.FunctionTimeoutError", timeout_message("f", 0.05))
        assert (await caller.output())[1:] == expected
        assert caller.retirement.reason == ""  # an async batch is cancelled: the container goes on

    asyncio.run(scenario())


def test_a_sync_batch_that_cannot_be_stopped_retires_its_container() -> None:
    release = threading.Event()

    def f(xs: list[int]) -> list[int]:
        release.wait(30)
        return xs

    async def scenario() -> None:
        b = batcher(f, size=1, timeout=0.05)
        stop = asyncio.Event()
        caller = Caller(b, 1, 1, retirement=Retirement(stop, bound=60))
        try:
            assert (await caller.output())[1] == "client.exceptions.FunctionTimeoutError"
            assert caller.retirement.reason == timeout_message("f", 0.05)
        finally:
            release.set()
            caller.retirement.close()

    asyncio.run(scenario())
