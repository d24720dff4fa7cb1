"""The ingress's long-lived stream to the scheduler: route table in, placements both ways."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable

from ingress.routes import RouteTable
from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from protos.batches import ingress_message_batches
from scheduler.auth import CLUSTER_SECRET_HEADER
from scheduler.connection import scheduler_aio_channel, stay_connected

log = logging.getLogger(__name__)


class Rejected(Exception):
    """The request cannot be placed; the client gets `status` and `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SchedulerLink:
    def __init__(
        self,
        address: str,
        ingress_id: str,
        http_port: int,
        scheme: str,
        placement_timeout: float,
        cluster_secret: str,
    ) -> None:
        self.address = address
        self._metadata = ((CLUSTER_SECRET_HEADER, cluster_secret),)
        self.hello = pb.IngressHello(ingress_id=ingress_id, http_port=http_port, scheme=scheme)
        self.placement_timeout = placement_timeout
        self.routes = RouteTable()
        self.edge = pb.EdgeConfig(ingress_count=1)  # tokens and ingress count, from the scheduler
        self.connected = asyncio.Event()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[pb.Assignment]] = {}
        self._outbox: asyncio.Queue[pb.IngressMessage] = asyncio.Queue()
        self._channel = scheduler_aio_channel(address, options=[("grpc.keepalive_time_ms", 10_000)])
        self._stub = pb_grpc.SchedulerStub(self._channel)
        self._task: asyncio.Task[None] | None = None
        self.edge_listeners: list[Callable[[pb.EdgeConfig], None]] = []  # called on every new EdgeConfig

    def start(self) -> None:
        self._task = asyncio.create_task(stay_connected(self._connect, self._lost), name="scheduler-link")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._channel.close(None)

    async def _connect(self) -> None:
        self._outbox = asyncio.Queue()
        self._outbox.put_nowait(pb.IngressMessage(hello=self.hello))
        call = self._stub.IngressConnect(ingress_message_batches(self._outbox), metadata=self._metadata)
        async for batch in call:
            for event in batch.events:
                kind = event.WhichOneof("kind")
                if kind == "assignment":
                    future = self._pending.pop(event.assignment.request_id, None)
                    if future is not None and not future.done():
                        future.set_result(event.assignment)
                    elif future is None:
                        self.release(event.assignment.request_id)  # its client left meanwhile
                elif kind == "rejection":
                    future = self._pending.pop(event.rejection.request_id, None)
                    if future is not None and not future.done():
                        future.set_exception(Rejected(event.rejection.http_status, event.rejection.message))
                elif kind == "edge":
                    self.edge = event.edge
                    for listener in self.edge_listeners:
                        listener(event.edge)
                elif kind == "routes":
                    self.routes = RouteTable(event.routes)
                    self._outbox.put_nowait(pb.IngressMessage(routes_applied=event.routes.version))
                    if not self.connected.is_set():
                        log.info("connected to scheduler %s", self.address)
                    self.connected.set()

    def _lost(self) -> None:
        self.connected.clear()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(Rejected(503, "the ingress lost its connection to the scheduler; retry"))

    async def acquire(self, function_id: str) -> tuple[int, pb.Assignment]:
        """Ask the scheduler for a container slot; the caller must release() the id."""
        if not self.connected.is_set():
            raise Rejected(503, "the scheduler is unreachable; retry shortly")
        request_id = next(self._ids)
        future: asyncio.Future[pb.Assignment] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._outbox.put_nowait(pb.IngressMessage(acquire=pb.Acquire(request_id=request_id, function_id=function_id)))
        try:
            return request_id, await asyncio.wait_for(future, self.placement_timeout)
        except TimeoutError:
            self._pending.pop(request_id, None)
            self.release(request_id)
            raise Rejected(503, f"no container was free within {self.placement_timeout:g} s; retry") from None
        except BaseException:
            self._pending.pop(request_id, None)
            self.release(request_id)
            raise

    def release(self, request_id: int, unreachable: bool = False) -> None:
        self._outbox.put_nowait(pb.IngressMessage(release=pb.Release(request_id=request_id, unreachable=unreachable)))
