"""How function calls travel: one call, a generator's items, a map's many calls, a spawn and the
`FunctionCall` handle it returns, and looking a function up. The methods users call
(`.remote()`, `.map()`, ...) are Function's (client/function.py).

Every call goes to the scheduler (which places it on a container and relays its outputs), over
this process's one channel to it (client/connection.py).
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from client import call_graph, modal_names
from client.aio import awaitable
from client.call_codec import encode_args, output_value
from client.connection import rpc_errors, scheduler_stub
from client.exceptions import ExecutionError, InputCancellation, InvalidError, from_rpc_error
from client.execution_context import current_function_call_id
from protos import stoker_pb2 as pb

MAP_CONCURRENCY = 50  # inputs of one .map() in flight at once; the scheduler queues beyond slots
RESULT_POLL_SECONDS = 50.0  # FunctionCall.get(timeout=None) asks again this often


@dataclass(frozen=True)
class CallTarget:
    """Which function a call goes to. Inside a container, the scheduler resolves the app's own
    name to the caller's app (a `serve`d app calls its own functions, not a deployed namesake)."""

    app_name: str
    function: str  # a function, or a class
    environment: str = ""
    method_name: str = ""  # the class's method
    parameters: bytes = b""  # the class instance's (protos/parameters.py)
    app_id: str = ""  # the live app to reach (the ephemeral app `stoker run` started); empty: by name
    options: bytes = b""  # what with_options() overrode: a canonical pb.FunctionOverrides (client/with_options.py)

    def request(self, args: tuple[Any, ...], kwargs: dict[str, Any], generator: bool = False) -> pb.CallRequest:
        return pb.CallRequest(
            app_name=self.app_name,
            environment=self.environment,
            function=self.function,
            args=encode_args(args, kwargs),
            generator=generator,
            method_name=self.method_name,
            parameters=self.parameters,
            app_id=self.app_id,
            options=pb.FunctionOverrides.FromString(self.options) if self.options else None,
            # Inside a container running an input: this call is one of its children.
            context=pb.CallContext(parent_call_id=current_function_call_id() or ""),
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
            # Each in its own copy of the caller's context: inside a container, the input it runs
            # is the parent of every call of the map (a pool's threads start without it).
            in_flight.append(pool.submit(contextvars.copy_context().run, call, target, args, kwargs))

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
    its `object_id`; cancel it; read its call graph. The scheduler keeps results and graphs for a
    bounded time (see README)."""

    def __init__(self, object_id: str) -> None:
        self.object_id = object_id

    def __repr__(self) -> str:
        return f"<FunctionCall {self.object_id}>"

    if not TYPE_CHECKING:  # at runtime only, so that mypy still checks attribute names

        def __getattr__(self, name: str) -> Any:
            modal_names.missing_attribute(self, "FunctionCall", name)

    @staticmethod
    def from_id(function_call_id: str) -> FunctionCall:
        if not function_call_id:
            raise InvalidError("FunctionCall.from_id needs the object_id of a spawned call")
        return FunctionCall(function_call_id)

    @awaitable
    def get(self, timeout: float | None = None) -> Any:
        """The call's result, waiting up to `timeout` seconds (None: as long as it takes; 0: only
        look); raises TimeoutError when it has not finished by then, the function's exception when
        it raised, and modal.exception.InputCancellation when the call was cancelled."""
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
                if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.CANCELLED:
                    why = exc.details() or f"the function call {self.object_id} was cancelled"
                    raise InputCancellation(why) from None
                raise from_rpc_error(exc) from None
            return output_value(output)

    @awaitable
    def cancel(self, terminate_containers: bool = False) -> None:
        """Stop the call: its container hears the cancel (an async function gets CancelledError;
        a sync one runs on, unless `terminate_containers`), and `.get()` raises InputCancellation.
        With terminate_containers=True the containers running it are stopped too, failing any
        other inputs they run. A call that has finished already is left as it is."""
        stub, metadata = scheduler_stub()
        with rpc_errors():
            stub.CancelCall(
                pb.CancelCallRequest(call_id=self.object_id, terminate_containers=terminate_containers),
                metadata=metadata,
                timeout=30,
            )

    @awaitable
    def get_call_graph(self) -> list[call_graph.InputInfo]:
        """The inputs of the spawned call's tree, from its root: each with the status, function
        and container of the input, and as its `children` the inputs of the calls made while it
        ran. Best-effort, as on Modal: the scheduler keeps a bounded number of graphs and nodes."""
        stub, metadata = scheduler_stub()
        with rpc_errors():
            response = stub.CallGraph(pb.CallGraphRequest(call_id=self.object_id), metadata=metadata, timeout=30)
        return call_graph.from_proto(response)


def lookup(app_name: str, name: str, environment: str) -> pb.LookupFunctionResponse:
    stub, metadata = scheduler_stub()
    with rpc_errors():
        return stub.LookupFunction(
            pb.LookupFunctionRequest(app_name=app_name, environment=environment, function=name),
            metadata=metadata,
            timeout=30,
        )
