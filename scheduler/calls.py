"""Function calls through the scheduler: find the function, place the call like an HTTP request
(Cluster.acquire_slot), relay it over the container's call link, keep spawned outcomes and call
graphs (scheduler/call_graph.py), cancel spawned calls.

A call whose function has `retries` runs again after a failed attempt (its function raised, a
timeout included, or its container stopped during it), after the policy's delay, until the
retries are spent; the caller gets the last failure. A generator's retry skips the items its
caller already has, as Modal's does. Web requests never come here: they are never retried."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator

import grpc
from google.protobuf.message import DecodeError

from protos import call_rules
from protos import overrides as wire_overrides
from protos import parameters as wire_parameters
from protos import stoker_pb2 as pb
from scheduler import call_graph, gpus
from scheduler.apps import AppError, Apps
from scheduler.call_graph import CallGraphs
from scheduler.call_link import CallLinks, ContainerLost
from scheduler.cluster import Cluster
from scheduler.model import Container, FunctionState, SlotRefused
from scheduler.retry_policy import max_retries, retry_delay
from scheduler.spawned import SpawnedCalls, SpawnedCancelled, TooManySpawned

log = logging.getLogger(__name__)

PLACE_ATTEMPTS = 3  # a call whose container was never reached is placed again, this many times in all
# Seconds a call whose container stopped during it waits for the worker to say why (it reports a
# container's exit after its last output, a moment after the call's stream broke).
EXIT_REASON_WAIT = 5.0
# The gRPC status a call gets when no slot can be placed for it; an HTTP request gets the
# ingress's mapping of the same reasons (ingress/scheduler_link.py).
GRPC_STATUS: dict[pb.Refusal.ValueType, grpc.StatusCode] = {
    pb.REFUSAL_APP_STOPPED: grpc.StatusCode.NOT_FOUND,
    pb.REFUSAL_QUEUE_TIMEOUT: grpc.StatusCode.RESOURCE_EXHAUSTED,
    pb.REFUSAL_NO_GPU: grpc.StatusCode.RESOURCE_EXHAUSTED,
    pb.REFUSAL_NO_CAPACITY: grpc.StatusCode.RESOURCE_EXHAUSTED,
    pb.REFUSAL_START_FAILED: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


class CallRefused(AppError):
    """No slot could be placed for the call; `reason` says why."""

    def __init__(self, refused: SlotRefused) -> None:
        super().__init__(GRPC_STATUS[refused.reason], refused.message)
        self.reason = refused.reason


def function_name(request: pb.CallRequest) -> str:
    """The function a call is for, as call graphs name it: `square`, or `Model.predict`."""
    return f"{request.function}.{request.method_name}" if request.method_name else request.function


def final_status(output: pb.CallOutput) -> pb.InputStatus.ValueType:
    """The status of an input whose call ended with `output`."""
    if output.WhichOneof("kind") == "error":
        # The container's timeout error (Modal's FunctionTimeoutError), not one the function raised itself.
        timed_out = output.error.type.endswith(".FunctionTimeoutError")
        return pb.INPUT_STATUS_TIMEOUT if timed_out else pb.INPUT_STATUS_FAILURE
    return pb.INPUT_STATUS_SUCCESS


class ContainerStopped(AppError):
    """The container of an attempt at a call to `fn` stopped during it."""

    def __init__(self, fn: FunctionState, message: str) -> None:
        super().__init__(grpc.StatusCode.INTERNAL, message)
        self.fn = fn


async def exit_reason(container: Container) -> str:
    """Why `container` exited, once its worker says (within EXIT_REASON_WAIT); "" when it has not."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(container.exited.wait(), EXIT_REASON_WAIT)
    return container.exit_reason


class Calls:
    def __init__(self, apps: Apps, cluster: Cluster) -> None:
        self.apps = apps
        self.cluster = cluster
        self.links = CallLinks()
        self.spawned = SpawnedCalls()
        self.graphs = CallGraphs()
        self._spawned_on: dict[str, Container] = {}  # the container each placed spawned call runs on

    def find(
        self, app_name: str, environment: str, function: str, caller_app_id: str = "", app_id: str = ""
    ) -> FunctionState:
        """The live function a call names. A container's calls to its own app's name reach its
        own app (a `serve`d one included); a call naming an `app_id` reaches that live app (how
        `stoker run` reaches its ephemeral app); other names resolve to deployed apps only."""
        functions: list[FunctionState] | None
        if app_id:
            functions = self._by_id(app_name, app_id, caller_app_id)
        else:
            own = self.apps.live.get(caller_app_id, []) if caller_app_id else []
            functions = own if own and own[0].app.name == app_name else None
        if functions is None:
            functions = self.apps.deployed(app_name, environment)
        if functions is None:
            where = f" in environment {environment!r}" if environment else ""
            raise AppError(grpc.StatusCode.NOT_FOUND, f"no deployed app named {app_name!r}{where}; deploy it first")
        for fn in functions:
            if fn.spec.name == function:
                return fn
        names = ", ".join(sorted(fn.spec.name for fn in functions))
        raise AppError(
            grpc.StatusCode.NOT_FOUND, f"app {app_name!r} has no function named {function!r} (it has: {names})"
        )

    def _by_id(self, app_name: str, app_id: str, caller_app_id: str) -> list[FunctionState]:
        # A workspace token may reach any live app of the workspace; a container's credential
        # only its own app (others it reaches by name, deployed ones only).
        if caller_app_id and app_id != caller_app_id:
            raise AppError(grpc.StatusCode.PERMISSION_DENIED, "a container's calls may name only its own app by id")
        functions = self.apps.live.get(app_id)
        if not functions:
            raise AppError(grpc.StatusCode.NOT_FOUND, f"the app {app_id} ({app_name!r}) is not running any more")
        if functions[0].app.name != app_name:
            raise AppError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the app {app_id} is named {functions[0].app.name!r}, not {app_name!r}",
            )
        return functions

    def lookup(self, request: pb.LookupFunctionRequest, caller_app_id: str = "") -> pb.LookupFunctionResponse:
        fn = self.find(request.app_name, request.environment, request.function, caller_app_id)
        return pb.LookupFunctionResponse(
            app_id=fn.app.app_id,
            function=fn.spec.name,
            web_url=fn.url,
            method_urls=[pb.EndpointUrl(function=r.method_name, url=r.url) for r in fn.web if r.method_name],
        )

    def _callable(self, request: pb.CallRequest, caller_app_id: str, spawned: bool = False) -> FunctionState:
        """The function a call names (for a class, the pool of its parameters), refused if it is a
        web function, the call is of the wrong kind for it (its container checks the kind again:
        it runs the code), or, `spawned`, it is a generator."""
        fn = self.find(request.app_name, request.environment, request.function, caller_app_id, request.app_id)
        if spawned and (request.generator or call_rules.is_generator(fn.spec, request.method_name)):
            name = f"{fn.spec.name}.{request.method_name}" if request.method_name else fn.spec.name
            raise AppError(grpc.StatusCode.INVALID_ARGUMENT, call_rules.spawned_generator_refusal(name))
        urls = {r.method_name: r.url for r in fn.web}
        refusal = call_rules.refusal(fn.spec, request.method_name, request.generator, urls)
        if refusal is not None:
            code = grpc.StatusCode.NOT_FOUND if refusal.startswith(call_rules.NO_SUCH_METHOD) else None
            raise AppError(code or grpc.StatusCode.FAILED_PRECONDITION, refusal)
        overrides = self._overrides(fn, request)
        if not fn.spec.methods:
            return self.cluster.pool(fn, b"", overrides)
        try:
            parameters = wire_parameters.normalize(fn.spec.name, list(fn.spec.parameters), request.parameters)
        except (wire_parameters.ParameterError, DecodeError) as exc:
            raise AppError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        return self.cluster.pool(fn, parameters, overrides)

    def _overrides(self, fn: FunctionState, request: pb.CallRequest) -> bytes:
        """The call's overridden options, checked, in canonical form; b"" for none."""
        if not request.HasField("options"):
            return b""
        o = request.options
        try:
            wire_overrides.check(o)
            gpus.parse_gpu(o.gpu)
        except ValueError as exc:  # OverrideError, or a gpu= that does not parse
            raise AppError(grpc.StatusCode.INVALID_ARGUMENT, f"{fn.spec.name}: {exc}") from None
        for name in o.secret_names:
            if not self.cluster.has_secret(name):
                raise AppError(
                    grpc.StatusCode.NOT_FOUND,
                    f"{fn.spec.name}: with_options(secrets=...) names the secret {name!r}, which does not "
                    f"exist; create it with `stoker secret create {name} KEY=VALUE ...`",
                )
        return wire_overrides.canonical(o)

    async def outputs(
        self, request: pb.CallRequest, caller_app_id: str = "", call_id: str = ""
    ) -> AsyncGenerator[pb.CallOutput, None]:
        """The call's outputs as its container sends them, attempt after attempt while its
        function's retries last; AppError when it cannot be run. `call_id`: a spawned call's id,
        its function call id (the root of a call graph)."""
        fn = self._callable(request, caller_app_id)
        call_graph.mint(request, call_id)
        node = None
        if call_id or request.context.parent_call_id:  # others are in no call graph: skip the work
            module = call_graph.module_name(fn.app.definition.entry)
            node = self.graphs.begin(request, function_name(request), module, spawned=bool(call_id))
        status: pb.InputStatus.ValueType | None = None  # set by the call's last output
        try:
            async with contextlib.aclosing(self._retried(request, caller_app_id, fn, call_id)) as retried:
                async for output, container in retried:
                    if node is not None:
                        node.task_id = container.id
                    if output.WhichOneof("kind") != "item":
                        status = final_status(output)
                    yield output
        except (asyncio.CancelledError, GeneratorExit):
            if status is None:
                status = pb.INPUT_STATUS_TERMINATED  # cancelled, or its caller went away
            raise
        except CallRefused as refused:
            if refused.reason == pb.REFUSAL_START_FAILED:
                status = pb.INPUT_STATUS_INIT_FAILURE
            raise
        finally:
            if node is not None:
                self.graphs.finished(node, pb.INPUT_STATUS_FAILURE if status is None else status)

    async def _retried(
        self, request: pb.CallRequest, caller_app_id: str, fn: FunctionState, call_id: str
    ) -> AsyncGenerator[tuple[pb.CallOutput, Container], None]:
        """The outputs of the call's attempts, each with the container it ran on: the last
        attempt's result or error, and each item once."""
        delivered = 0  # items the caller has had: a retried generator's first ones are skipped
        retry = 0
        while True:
            seen = 0
            try:
                async with contextlib.aclosing(self._attempt(request, caller_app_id, fn, call_id)) as attempt:
                    async for fn, output, container in attempt:
                        if output.WhichOneof("kind") == "item":
                            seen += 1
                            if seen > delivered:
                                delivered = seen
                                yield output, container
                            continue
                        if output.WhichOneof("kind") != "error" or retry >= max_retries(fn.spec):
                            yield output, container
                            return
                        failure = f"{output.error.type}: {output.error.message}"
                        break
            except ContainerStopped as stopped:
                fn = stopped.fn
                if retry >= max_retries(fn.spec):
                    raise
                failure = stopped.message
            retry += 1
            delay = retry_delay(fn.spec.retries, retry)
            log.info(
                "call to %s failed (%s); retry %d of %d in %g s",
                fn.spec.name,
                failure.splitlines()[0] if failure else "?",
                retry,
                max_retries(fn.spec),
                delay,
            )
            await asyncio.sleep(delay)
            fn = self._callable(request, caller_app_id)  # found anew: the app may have been redeployed

    async def _attempt(
        self, request: pb.CallRequest, caller_app_id: str, fn: FunctionState, call_id: str
    ) -> AsyncGenerator[tuple[FunctionState, pb.CallOutput, Container], None]:
        """One run of the call: its outputs, each with the function and container that ran it.
        ContainerStopped when its container stopped during it; a container never reached is
        tried again (on the function found anew)."""
        for attempt in range(1, PLACE_ATTEMPTS + 1):
            if attempt > 1:
                fn = self._callable(request, caller_app_id)
            try:
                container = await self.cluster.acquire_slot(fn)
            except SlotRefused as refused:
                raise CallRefused(refused) from None
            unreachable = False
            link = self.links.get(container.address)
            if call_id:
                self._spawned_on[call_id] = container
            try:
                async with contextlib.aclosing(link.call(request)) as relayed:
                    async for output in relayed:
                        yield fn, output, container
                return
            except ContainerLost as lost:
                if lost.reached or attempt == PLACE_ATTEMPTS:
                    why = (lost.stream_broke and await exit_reason(container)) or str(lost)
                    raise ContainerStopped(
                        fn,
                        f"the container {container.id} running {fn.spec.name!r} stopped during the call ({why}); "
                        "the app's logs may say why",
                    ) from None
                unreachable = True
                log.warning("call to %s: %s could not be reached; placing it again", fn.spec.name, container.id)
            finally:
                self._spawned_on.pop(call_id, None)
                self.cluster.release_slot(container, unreachable, retire=link.retiring)

    async def run_to_end(self, request: pb.CallRequest, caller_app_id: str, call_id: str) -> pb.CallOutput:
        """The call's final output (its result or error), for Spawn."""
        async with contextlib.aclosing(self.outputs(request, caller_app_id, call_id)) as outputs:
            async for output in outputs:
                if output.WhichOneof("kind") != "item":
                    return output
        raise AppError(grpc.StatusCode.INTERNAL, "the call ended without a result")

    def spawn(self, request: pb.CallRequest, caller_app_id: str = "") -> str:
        self._callable(request, caller_app_id, spawned=True)  # fail now, not once it runs
        try:
            return self.spawned.start(lambda call_id: self.run_to_end(request, caller_app_id, call_id))
        except TooManySpawned as exc:
            raise AppError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)) from None

    async def result(self, request: pb.CallResultRequest) -> pb.CallOutput:
        try:
            return await self.spawned.outcome(request.call_id, request.timeout)
        except KeyError:
            raise AppError(grpc.StatusCode.NOT_FOUND, self._unknown(request.call_id)) from None
        except TimeoutError:
            raise AppError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"the call {request.call_id} has not finished within {request.timeout:g} s",
            ) from None
        except SpawnedCancelled:
            raise AppError(
                grpc.StatusCode.CANCELLED, f"the function call {request.call_id} was cancelled: it has no result"
            ) from None

    def cancel(self, request: pb.CancelCallRequest) -> None:
        """Cancel the spawned call: its container hears a cancel frame for it (Calls.outputs'
        stream closes); with terminate_containers, its container is stopped as well."""
        container = self._spawned_on.get(request.call_id)
        try:
            running = self.spawned.cancel(request.call_id)
        except KeyError:
            raise AppError(grpc.StatusCode.NOT_FOUND, self._unknown(request.call_id)) from None
        if running:
            log.info("cancelled the spawned call %s", request.call_id)
        if running and request.terminate_containers and container is not None:
            log.info("terminating %s, which ran the cancelled call %s", container.id, request.call_id)
            self.cluster.terminate(container)

    def graph(self, request: pb.CallGraphRequest) -> pb.CallGraphResponse:
        graph = self.graphs.graph(request.call_id)
        if graph is None:
            raise AppError(
                grpc.StatusCode.NOT_FOUND,
                f"no call graph holds {request.call_id!r}: graphs are kept for spawned calls and the calls "
                f"made while they run, for {self.graphs.keep_seconds / 60:g} minutes after the spawned call finished",
            )
        return graph

    def _unknown(self, call_id: str) -> str:
        return (
            f"no spawned call {call_id!r}: the id is wrong, or its result expired "
            f"(kept {self.spawned.keep_seconds / 60:g} minutes after the call finished)"
        )

    async def close(self) -> None:
        await self.spawned.close()
        await self.links.close()
