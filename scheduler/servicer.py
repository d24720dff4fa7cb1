"""The Scheduler gRPC service: thin handlers over Apps and Cluster."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import grpc

from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from protos.batches import ingress_event_batches, ingress_messages
from scheduler import call_credentials
from scheduler.apps import AppError, Apps
from scheduler.calls import Calls
from scheduler.cluster import Cluster
from scheduler.images import BuildFailed, ImageBuilds, ImagePrunes, images_of
from scheduler.logs import LogHub, find_app, with_lines
from scheduler.model import IngressSession, WorkerSession
from scheduler.secrets import Secrets
from scheduler.store import Store
from scheduler.tokens import Tokens

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")
S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
_CLOSE = object()
ROUTES_TIMEOUT = 2.0  # how long deploy and stop wait for ingresses to route by the new table


async def _duplex(reader: Awaitable[None], outbox: asyncio.Queue[T]) -> AsyncIterator[T]:
    """Yield what lands in `outbox` until `reader` (consuming the request stream) finishes."""
    task = asyncio.ensure_future(reader)
    task.add_done_callback(lambda _: outbox.put_nowait(_CLOSE))  # type: ignore[arg-type]
    try:
        while (item := await outbox.get()) is not _CLOSE:
            yield item
    finally:
        task.cancel()


def aborts_on_app_error(
    handler: Callable[[S, Req, Context], Awaitable[Resp]],
) -> Callable[[S, Req, Context], Coroutine[Any, Any, Resp]]:
    """A unary handler whose AppError ends its RPC with the error's status and message."""

    @functools.wraps(handler)
    async def handle(self: S, request: Req, context: Context) -> Resp:
        try:
            return await handler(self, request, context)
        except AppError as exc:
            await context.abort(exc.code, exc.message)
            raise  # not reached: abort raises

    return handle


def aborts_on_app_error_streaming(
    handler: Callable[[S, Req, Context], AsyncGenerator[Resp, None]],
) -> Callable[[S, Req, Context], AsyncGenerator[Resp, None]]:
    """A server-streaming handler whose AppError ends its RPC with the error's status and message
    (after whatever it yielded before)."""

    @functools.wraps(handler)
    async def handle(self: S, request: Req, context: Context) -> AsyncGenerator[Resp, None]:
        try:
            async with contextlib.aclosing(handler(self, request, context)) as responses:
                async for response in responses:
                    yield response
        except AppError as exc:
            await context.abort(exc.code, exc.message)

    return handle


class SchedulerServicer(pb_grpc.SchedulerServicer):
    def __init__(
        self, apps: Apps, cluster: Cluster, store: Store, tokens: Tokens, secrets: Secrets, call_key: bytes
    ) -> None:
        self.apps = apps
        self.cluster = cluster
        self.call_key = call_key  # verifies the call credentials of containers (scheduler/call_credentials.py)
        self.store = store
        self.tokens = tokens
        self.secrets = secrets
        self.logs = LogHub(is_live=lambda app_id: app_id in apps.live)
        cluster.exit_listeners.append(
            lambda c: self.logs.container_gone(c.function.app.app_id, cluster.app_containers(c.function.app.app_id))
        )
        self.calls = Calls(apps, cluster)
        self.builds = ImageBuilds()
        self.prunes = ImagePrunes()

    # ------------------------------------------------------------ secrets

    @aborts_on_app_error
    async def CreateSecret(self, request: pb.CreateSecretRequest, context: Context) -> pb.CreateSecretResponse:
        self.secrets.create(request.name, dict(request.values), request.overwrite)
        log.info("stored secret %s (%d keys)", request.name, len(request.values))  # never the values
        return pb.CreateSecretResponse()

    async def ListSecrets(self, request: pb.ListSecretsRequest, context: Context) -> pb.ListSecretsResponse:
        return pb.ListSecretsResponse(secrets=self.secrets.list())

    @aborts_on_app_error
    async def DeleteSecret(self, request: pb.DeleteSecretRequest, context: Context) -> pb.DeleteSecretResponse:
        self.secrets.delete(request.name)
        return pb.DeleteSecretResponse()

    # ------------------------------------------------------------ tokens

    async def CreateToken(self, request: pb.CreateTokenRequest, context: Context) -> pb.CreateTokenResponse:
        key, secret = self.tokens.create()
        log.info("created proxy token %s", key)  # never the secret
        return pb.CreateTokenResponse(key=key, secret=secret)

    async def ListTokens(self, request: pb.ListTokensRequest, context: Context) -> pb.ListTokensResponse:
        return pb.ListTokensResponse(tokens=self.tokens.list())

    async def RevokeToken(self, request: pb.RevokeTokenRequest, context: Context) -> pb.RevokeTokenResponse:
        if not self.tokens.revoke(request.key):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no proxy token with key {request.key!r}")
        log.info("revoked proxy token %s", request.key)
        return pb.RevokeTokenResponse()

    async def _routes_live(self) -> None:
        try:
            async with asyncio.timeout(ROUTES_TIMEOUT):
                await self.cluster.wait_routes_applied()
        except TimeoutError:
            log.warning("not every ingress applied the new routes within %.0f s", ROUTES_TIMEOUT)

    # ------------------------------------------------------------ control plane

    async def _build_images(self, app: pb.AppDefinition) -> AsyncIterator[str]:
        """Build the app's images on every connected worker first: a version whose image does not
        build never becomes live. Workers that join later build it when they register."""
        images = images_of(app.functions)
        if not images:
            return
        self.store.save_image_blobs(app.image_blobs)
        workers = list(self.cluster.workers.values())
        if not workers:
            yield "no worker is connected: images are built when workers join"
            return
        try:
            async for line in self.builds.build(workers, images):
                yield line
        except BuildFailed as exc:
            raise AppError(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from None

    @aborts_on_app_error_streaming
    async def Deploy(self, request: pb.DeployRequest, context: Context) -> AsyncGenerator[pb.DeployEvent, None]:
        self.apps.check(request.app, request.environment)  # before any build
        async for line in self._build_images(request.app):
            yield pb.DeployEvent(build_output=line)
        deployed = self.apps.deploy(request.app, request.environment, ephemeral=False)
        deployed.warnings.extend(self.cluster.gpu_warnings(request.app.functions))
        await self._routes_live()
        yield pb.DeployEvent(deployed=deployed)

    @aborts_on_app_error_streaming
    async def Serve(
        self, request_iterator: AsyncIterator[pb.ServeRequest], context: Context
    ) -> AsyncGenerator[pb.ServeResponse, None]:
        app_id = f"ap-{uuid.uuid4().hex[:12]}"
        with self.logs.subscribe(app_id) as subscription:
            session = self._serve_session(request_iterator, app_id)
            async for response in with_lines(session, subscription, lambda line: pb.ServeResponse(log=line)):
                yield response

    async def _serve_session(
        self, request_iterator: AsyncIterator[pb.ServeRequest], app_id: str
    ) -> AsyncIterator[pb.ServeResponse]:
        live = False
        try:
            async for request in request_iterator:
                try:
                    self.apps.check(request.app, request.environment)
                    async for line in self._build_images(request.app):
                        yield pb.ServeResponse(build_output=line)
                    deployed = self.apps.deploy(request.app, request.environment, ephemeral=True, app_id=app_id)
                    deployed.warnings.extend(self.cluster.gpu_warnings(request.app.functions))
                except AppError as exc:
                    if not live:
                        raise  # the session fails: it has nothing serving yet
                    yield pb.ServeResponse(rejected=exc.message)  # the previous version serves on
                    continue
                live = True
                await self._routes_live()
                yield pb.ServeResponse(deployed=deployed)
        finally:
            if live:
                log.info("serve session for %s ended; stopping it", app_id)
                self.apps.stop_app_id(app_id)
                self.logs.app_stopped(app_id, self.cluster.app_containers(app_id))

    async def ListApps(self, request: pb.ListAppsRequest, context: Context) -> pb.ListAppsResponse:
        return self.apps.list()

    @aborts_on_app_error
    async def StopApp(self, request: pb.StopAppRequest, context: Context) -> pb.StopAppResponse:
        stopped = pb.StopAppResponse(app_id=self.apps.stop(request.name, request.environment))
        self.logs.app_stopped(stopped.app_id, self.cluster.app_containers(stopped.app_id))
        await self._routes_live()
        return stopped

    async def AppLogs(self, request: pb.AppLogsRequest, context: Context) -> AsyncIterator[pb.LogLine]:
        if request.tail < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"tail must be 0 (all) or more, not {request.tail}")
        app_id = find_app(self.apps.live, request.name, request.environment)
        if app_id is None:
            where = f" in environment {request.environment!r}" if request.environment else ""
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"no running app named {request.name!r}{where}; `stoker app list` shows them"
            )
            return
        # Recent lines and the subscription are taken together, so no line falls between them.
        with self.logs.subscribe(app_id) as subscription:
            for line in self.logs.recent(app_id, request.tail):
                yield line
            while request.follow and (new := await subscription.get()) is not None:
                yield new

    async def GetBundle(self, request: pb.GetBundleRequest, context: Context) -> pb.GetBundleResponse:
        data = self.store.get_bundle(request.bundle_hash)
        if data is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no code bundle {request.bundle_hash}")
        return pb.GetBundleResponse(bundle=data)

    async def GetImageBlob(self, request: pb.GetImageBlobRequest, context: Context) -> pb.GetImageBlobResponse:
        data = self.store.get_image_blob(request.digest)
        if data is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no image files {request.digest}")
        return pb.GetImageBlobResponse(data=data)

    async def ImagePrune(self, request: pb.ImagePruneRequest, context: Context) -> pb.ImagePruneResponse:
        """Every connected worker deletes the images and layers no live app version uses."""
        specs = [fn.spec for fns in self.apps.live.values() for fn in fns]
        specs += [c.function.spec for c in self.cluster.containers.values()]  # retiring versions too
        keep = sorted(images_of(specs))
        workers = list(self.cluster.workers.values())
        return pb.ImagePruneResponse(workers=await self.prunes.prune(workers, keep))

    async def Status(self, request: pb.StatusRequest, context: Context) -> pb.StatusResponse:
        c = self.cluster
        now = time.monotonic()
        containers = sorted(c.containers.values(), key=lambda ct: (ct.function.app.name, ct.function.spec.name, ct.id))
        functions = sorted(c.functions.values(), key=lambda fn: (fn.app.name, fn.spec.name, fn.app.version))
        return pb.StatusResponse(
            workers=[
                pb.WorkerInfo(
                    worker_id=w.id,
                    hostname=w.info.hostname,
                    gpus=w.info.gpus,
                    containers=w.container_count,
                    gpus_in_use=sorted(w.gpus_in_use),
                    last_heartbeat_age=max(0.0, now - w.last_heartbeat),
                    cpu_count=w.info.cpu_count,
                    memory_bytes=w.info.memory_bytes,
                    cpu_reserved=w.cpu_reserved,
                    memory_reserved_mib=w.memory_reserved_mib,
                )
                for w in sorted(c.workers.values(), key=lambda w: w.id)
            ],
            ingresses=len(c.ingresses),
            containers=[
                pb.ContainerInfo(
                    container_id=ct.id,
                    app_name=ct.function.app.name,
                    function=ct.function.shown_name,
                    worker_id=ct.worker.id,
                    state=ct.state,
                    in_flight=ct.in_flight,
                    gpu_indices=ct.gpu_indices,
                    max_inputs=ct.function.max_inputs,
                )
                for ct in containers
            ],
            functions=[
                pb.FunctionInfo(
                    app_name=fn.app.name,
                    function=fn.shown_name,
                    version=fn.app.version,
                    queued=len(fn.queue),
                    containers=len(fn.containers),
                    gpu=fn.spec.gpu,
                    scaling=fn.scaling if fn.queue else "",
                )
                for fn in functions
            ],
        )

    # ------------------------------------------------------------ function calls

    def _caller_app_id(self, context: Context) -> str:
        """The app whose container is calling, from its call credential (checked by the auth
        interceptor already); empty for a program or the CLI."""
        metadata = dict((k, v) for k, v in context.invocation_metadata() or () if isinstance(v, str))
        token = metadata.get("authorization", "").partition(" ")[2].strip()
        return call_credentials.verify(self.call_key, token) or ""

    @aborts_on_app_error
    async def LookupFunction(self, request: pb.LookupFunctionRequest, context: Context) -> pb.LookupFunctionResponse:
        return self.calls.lookup(request, self._caller_app_id(context))

    @aborts_on_app_error_streaming
    async def Call(self, request: pb.CallRequest, context: Context) -> AsyncGenerator[pb.CallOutput, None]:
        async with contextlib.aclosing(self.calls.outputs(request, self._caller_app_id(context))) as outputs:
            async for output in outputs:
                yield output

    @aborts_on_app_error
    async def Spawn(self, request: pb.CallRequest, context: Context) -> pb.SpawnResponse:
        return pb.SpawnResponse(call_id=self.calls.spawn(request, self._caller_app_id(context)))

    @aborts_on_app_error
    async def CallResult(self, request: pb.CallResultRequest, context: Context) -> pb.CallOutput:
        return await self.calls.result(request)

    @aborts_on_app_error
    async def CancelCall(self, request: pb.CancelCallRequest, context: Context) -> pb.CancelCallResponse:
        self.calls.cancel(request)
        return pb.CancelCallResponse()

    @aborts_on_app_error
    async def CallGraph(self, request: pb.CallGraphRequest, context: Context) -> pb.CallGraphResponse:
        return self.calls.graph(request)

    # ------------------------------------------------------------ workers

    async def WorkerConnect(
        self, request_iterator: AsyncIterator[pb.WorkerMessage], context: Context
    ) -> AsyncIterator[pb.WorkerCommand]:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("kind") != "register":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a worker stream must open with register")
            return
        session = WorkerSession(info=first.register)
        stale = self.cluster.workers.get(session.id)
        if stale is not None:
            self.cluster.remove_worker(stale)
        log.info("worker %s registered (%d GPUs)", session.id, len(session.info.gpus))
        self.cluster.add_worker(session)
        # Build what live apps need before their containers land here (a start builds it anyway).
        self.builds.request(session, images_of(fn.spec for fns in self.apps.live.values() for fn in fns))
        session.reader = asyncio.ensure_future(self._worker_messages(session, request_iterator))
        try:
            async for command in _duplex(session.reader, session.outbox):
                yield command
        finally:
            log.info("worker %s disconnected", session.id)
            self.builds.worker_lost(session.id)
            self.cluster.remove_worker(session)

    async def _worker_messages(self, session: WorkerSession, messages: AsyncIterator[pb.WorkerMessage]) -> None:
        async for message in messages:
            session.last_heartbeat = time.monotonic()
            kind = message.WhichOneof("kind")
            if kind == "heartbeat":
                self.cluster.worker_heartbeat(session, message.heartbeat)
            elif kind == "started":
                self.cluster.container_started(message.started.container_id, message.started.address)
            elif kind == "exited":
                self.cluster.container_exited(message.exited.container_id, message.exited.reason)
            elif kind == "logs":
                self.logs.publish(message.logs.lines)
            elif kind == "image":
                self.builds.on_event(session.id, message.image)
            elif kind == "image_pruned":
                self.prunes.on_pruned(message.image_pruned)

    # ------------------------------------------------------------ ingresses

    async def IngressConnect(
        self, request_iterator: AsyncIterator[pb.IngressMessages], context: Context
    ) -> AsyncIterator[pb.IngressEvents]:
        messages = ingress_messages(request_iterator)
        first = await anext(messages, None)
        if first is None or first.WhichOneof("kind") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "an ingress stream must open with hello")
            return
        if first.hello.http_port:
            self.apps.set_public(first.hello.scheme or "http", first.hello.http_port)
        session = IngressSession(id=first.hello.ingress_id or uuid.uuid4().hex)
        self.cluster.add_ingress(session)
        reader = asyncio.ensure_future(self._ingress_messages(session, messages))
        reader.add_done_callback(lambda _: session.outbox.put_nowait(None))  # ends the batches
        try:
            async for events in ingress_event_batches(session.outbox):
                yield events
        finally:
            reader.cancel()
            self.cluster.remove_ingress(session)

    async def _ingress_messages(self, session: IngressSession, messages: AsyncIterator[pb.IngressMessage]) -> None:
        async for message in messages:
            kind = message.WhichOneof("kind")
            if kind == "acquire":
                self.cluster.acquire(session, message.acquire.slot_id, message.acquire.function_id)
            elif kind == "release":
                release = message.release
                retire = "the container said it is retiring" if release.retire else ""
                self.cluster.release(session, release.slot_id, release.unreachable, retire)
            elif kind == "routes_applied":
                self.cluster.routes_applied(session, message.routes_applied)
