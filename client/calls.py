"""Calling deployed functions: `.remote()`, `.remote_gen()`, `.map()`, `.spawn()`, and the
`FunctionCall` handle a spawn returns. Each also has its `.aio` form (client/aio.py).

Every call goes to the scheduler (which places it on a container and relays its outputs), over
this process's one channel to it (client/connection.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import grpc

from client.aio import async_iterable, awaitable
from client.call_codec import encode_args, output_value
from client.connection import rpc_errors, scheduler_stub
from client.exceptions import ExecutionError, InvalidError, from_rpc_error
from protos import stoker_pb2 as pb

MAP_CONCURRENCY = 50  # inputs of one .map() in flight at once; the scheduler queues beyond slots
RESULT_POLL_SECONDS = 50.0  # FunctionCall.get(timeout=None) asks again this often


@dataclass(frozen=True)
class CallTarget:
    """Which function a call goes to. Inside a container, the scheduler resolves the app's own
    name to the caller's app (a `serve`d app calls its own functions, not a deployed namesake)."""

    app_name: str
    function: str
    environment: str = ""

    def request(self, args: tuple[Any, ...], kwargs: dict[str, Any], generator: bool = False) -> pb.CallRequest:
        return pb.CallRequest(
            app_name=self.app_name,
            environment=self.environment,
            function=self.function,
            args=encode_args(args, kwargs),
            generator=generator,
        )


def call(target: CallTarget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run the function once, remotely, and return its result (or raise its exception)."""
    outputs = _stream(target.request(args, kwargs))
    try:
        for output in outputs:
            if output.WhichOneof("kind") != "item":
                return output_value(output)
    finally:
        outputs.close()
    raise ExecutionError(f"the call to {target.function} ended without a result")


def call_gen(target: CallTarget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Any]:
    """Each item the remote generator yields, as it is yielded. Closing this iterator early
    cancels the call in its container."""
    outputs = _stream(target.request(args, kwargs, generator=True))
    try:
        for output in outputs:
            if output.WhichOneof("kind") not in ("item", "error"):
                return  # the result: a generator's return value is not an item
            yield output_value(output)  # the item, or the callee's exception raised
    finally:
        outputs.close()


def _stream(request: pb.CallRequest) -> Generator[pb.CallOutput, None, None]:
    stub, metadata = scheduler_stub()
    rpc = stub.Call(request, metadata=metadata)
    try:
        with rpc_errors():
            yield from rpc
    finally:
        rpc.cancel()  # type: ignore[no-untyped-call]  # a no-op once the call is over; tells the scheduler when we leave early


def map_calls(
    target: CallTarget,
    inputs: Iterable[tuple[Any, ...]],
    kwargs: dict[str, Any],
    order_outputs: bool,
    return_exceptions: bool,
) -> Iterator[Any]:
    """One call per input, at most MAP_CONCURRENCY in flight, outputs in input order unless
    `order_outputs` is False (then as they finish)."""
    pending_inputs = iter(inputs)
    pool = ThreadPoolExecutor(max_workers=MAP_CONCURRENCY, thread_name_prefix=f"map-{target.function}")
    in_flight: deque[Future[Any]] = deque()

    def refill() -> None:
        while len(in_flight) < MAP_CONCURRENCY:
            args = next(pending_inputs, None)
            if args is None:
                return
            in_flight.append(pool.submit(call, target, args, kwargs))

    def outcome(future: Future[Any]) -> Any:
        error = future.exception()
        if error is None:
            return future.result()
        if return_exceptions and isinstance(error, Exception):
            return error
        raise error

    try:
        refill()
        while in_flight:
            if order_outputs:
                finished = [in_flight.popleft()]
                wait(finished)
            else:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                finished = [f for f in in_flight if f in done]
                for f in finished:
                    in_flight.remove(f)
            for future in finished:
                value = outcome(future)
                refill()
                yield value
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def spawn(target: CallTarget, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FunctionCall:
    stub, metadata = scheduler_stub()
    with rpc_errors():
        reply = stub.Spawn(target.request(args, kwargs), metadata=metadata, timeout=60)
    return FunctionCall(reply.call_id)


class FunctionCall:
    """A call started with `.spawn()`: its result, when it is ready, from any process that knows
    its `object_id`. The scheduler keeps results for a bounded time (see README)."""

    def __init__(self, object_id: str) -> None:
        self.object_id = object_id

    def __repr__(self) -> str:
        return f"<FunctionCall {self.object_id}>"

    @staticmethod
    def from_id(function_call_id: str) -> FunctionCall:
        if not function_call_id:
            raise InvalidError("FunctionCall.from_id needs the object_id of a spawned call")
        return FunctionCall(function_call_id)

    @awaitable
    def get(self, timeout: float | None = None) -> Any:
        """The call's result, waiting up to `timeout` seconds (None: as long as it takes);
        raises TimeoutError when it has not finished by then, or the function's exception."""
        if timeout is not None and timeout < 0:
            raise InvalidError(f"timeout must be at least 0 seconds, got {timeout}")
        stub, metadata = scheduler_stub()
        while True:
            wait_for = RESULT_POLL_SECONDS if timeout is None else timeout
            try:
                output = stub.CallResult(
                    pb.CallResultRequest(call_id=self.object_id, timeout=wait_for),
                    metadata=metadata,
                    timeout=wait_for + 30,
                )
            except grpc.RpcError as exc:
                if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    if timeout is None:
                        continue
                    raise TimeoutError(exc.details() or f"{self.object_id} did not finish in {timeout:g} s") from None
                raise from_rpc_error(exc) from None
            return output_value(output)


def lookup(app_name: str, name: str, environment: str) -> pb.LookupFunctionResponse:
    stub, metadata = scheduler_stub()
    with rpc_errors():
        return stub.LookupFunction(
            pb.LookupFunctionRequest(app_name=app_name, environment=environment, function=name),
            metadata=metadata,
            timeout=30,
        )


class Invocable:
    """The call methods shared by an app's own `Function` and the handle `Function.from_name`
    returns. Subclasses say where calls go and what they know of the function."""

    def _call_target(self) -> CallTarget:
        raise NotImplementedError

    def _web_url_for_error(self) -> str | None:
        """The URL when this is a web function (which cannot be called), else None."""
        raise NotImplementedError

    def _is_generator(self) -> bool | None:
        """Whether the function is a generator; None when only its container knows."""
        return None

    def _check(self, generator: bool) -> CallTarget:
        target = self._call_target()
        url = self._web_url_for_error()
        if url is not None:
            raise InvalidError(
                f"{target.function} is a web function and cannot be called with .remote(), .map() or .spawn(); "
                f"send HTTP requests to its URL instead: {url or '(no URL known here)'}"
            )
        known = self._is_generator()
        if known is True and not generator:
            raise InvalidError(f"{target.function} is a generator function: call it with .remote_gen(), not .remote()")
        if known is False and generator:
            raise InvalidError(
                f"{target.function} is not a generator function: call it with .remote(), not .remote_gen()"
            )
        return target

    @awaitable
    def remote(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function in a container of its app and return its result."""
        return call(self._check(generator=False), args, kwargs)

    @async_iterable
    def remote_gen(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Run a generator function remotely; iterate to get each item as it is yielded."""
        return call_gen(self._check(generator=True), args, kwargs)

    @async_iterable
    def map(
        self,
        *input_iterators: Iterable[Any],
        kwargs: dict[str, Any] | None = None,
        order_outputs: bool = True,
        return_exceptions: bool = False,
    ) -> Iterator[Any]:
        """Call the function once per input (zipping several iterables into positional
        arguments), in parallel over containers; yield the results in input order, or as they
        finish with order_outputs=False. With return_exceptions=True an input that raised yields
        its exception instead of raising it."""
        if not input_iterators:
            raise InvalidError(".map() needs at least one iterable of inputs")
        target = self._check(generator=False)
        return map_calls(target, zip(*input_iterators, strict=False), kwargs or {}, order_outputs, return_exceptions)

    @async_iterable
    def starmap(
        self,
        input_iterator: Iterable[Iterable[Any]],
        kwargs: dict[str, Any] | None = None,
        order_outputs: bool = True,
        return_exceptions: bool = False,
    ) -> Iterator[Any]:
        """Like map, each input being a sequence of positional arguments."""
        target = self._check(generator=False)
        inputs = (tuple(args) for args in input_iterator)
        return map_calls(target, inputs, kwargs or {}, order_outputs, return_exceptions)

    @awaitable
    def spawn(self, *args: Any, **kwargs: Any) -> FunctionCall:
        """Start the call and return at once; `.get()` on the handle waits for the result."""
        return spawn(self._check(generator=False), args, kwargs)


class FunctionHandle(Invocable):
    """A deployed function, found by name (`Function.from_name`). As in Modal, the name is
    looked up on first use (a call, `get_web_url()` or `hydrate()`), so app files may create
    handles at import time; an unknown app or function raises NotFoundError then."""

    def __init__(self, target: CallTarget) -> None:
        self.target = target
        self._found: pb.LookupFunctionResponse | None = None

    def __repr__(self) -> str:
        return f"<Function {self.target.app_name}.{self.target.function}>"

    def hydrate(self) -> FunctionHandle:
        """Look the function up now; raises NotFoundError when it does not exist."""
        if self._found is None:
            self._found = lookup(self.target.app_name, self.target.function, self.target.environment)
        return self

    @property
    def _lookup(self) -> pb.LookupFunctionResponse:
        self.hydrate()
        assert self._found is not None
        return self._found

    def _call_target(self) -> CallTarget:
        return self.target

    def _web_url_for_error(self) -> str | None:
        found = self._lookup
        return found.web_url if found.is_web else None

    def get_web_url(self) -> str | None:
        """The function's URL, as deploy printed it; None when it is not a web function."""
        return self._lookup.web_url or None
