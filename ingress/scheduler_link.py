"""The ingress's long-lived stream to the scheduler: route table in, placements both ways."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable

from ingress.held_slots import LINGER, HeldSlots, Slot
from ingress.routes import RouteTable
from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from protos.batches import ingress_message_batches
from protos.channels import CLUSTER_SECRET_HEADER, scheduler_aio_channel, stay_connected

log = logging.getLogger(__name__)


# The HTTP status a client gets when the scheduler refuses its request a slot; a function call
# gets the scheduler's mapping of the same reasons (scheduler/calls.py).
HTTP_STATUS: dict[pb.Refusal.ValueType, int] = {
    pb.REFUSAL_APP_STOPPED: 404,
    pb.REFUSAL_QUEUE_TIMEOUT: 503,
    pb.REFUSAL_NO_GPU: 503,
    pb.REFUSAL_NO_CAPACITY: 503,
    pb.REFUSAL_START_FAILED: 503,
}


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
        slot_linger: float = LINGER,
    ) -> None:
        self.address = address
        self._metadata = ((CLUSTER_SECRET_HEADER, cluster_secret),)
        self.hello = pb.IngressHello(ingress_id=ingress_id, http_port=http_port, scheme=scheme)
        self.placement_timeout = placement_timeout
        self.routes = RouteTable()
        self.connected = asyncio.Event()
        self._ids = itertools.count(1)
        # slot id -> (the slot once placed, the function it is for)
        self._pending: dict[int, tuple[asyncio.Future[Slot], str]] = {}
        # Held slots are all from the current stream: _lost() clears them with the epoch.
        self.held = HeldSlots(lambda slot: self._send_release(slot.slot_id), slot_linger)
        self._epoch = 0  # counts scheduler streams: a slot from an earlier one is gone
        self._outbox: asyncio.Queue[pb.IngressMessage] = asyncio.Queue()
        self._channel = scheduler_aio_channel(address, options=[("grpc.keepalive_time_ms", 10_000)])
        self._stub = pb_grpc.SchedulerStub(self._channel)
        self._task: asyncio.Task[None] | None = None
        self.edge_listeners: list[Callable[[pb.EdgeConfig], None]] = []  # called on every new EdgeConfig
        self.route_listeners: list[Callable[[pb.RouteTable], None]] = []  # called on every new route table

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
                    assignment = event.assignment
                    pending = self._pending.pop(assignment.slot_id, None)
                    if pending is not None and not pending[0].done():
                        slot = Slot(
                            assignment.slot_id,
                            pending[1],
                            assignment.container_id,
                            assignment.address,
                            assignment.may_hold,
                            self._epoch,
                        )
                        self.held.granted(slot)  # here, in stream order: a Recall after it reaches it
                        pending[0].set_result(slot)
                    elif pending is None:
                        self._send_release(assignment.slot_id)  # its client left meanwhile
                elif kind == "recall":
                    self.held.recall(event.recall.function_id)
                elif kind == "rejection":
                    rejection = event.rejection
                    pending = self._pending.pop(rejection.slot_id, None)
                    if pending is not None and not pending[0].done():
                        status = HTTP_STATUS.get(rejection.reason, 503)  # a newer scheduler's reason
                        pending[0].set_exception(Rejected(status, rejection.message))
                elif kind == "edge":
                    for listener in self.edge_listeners:
                        listener(event.edge)
                elif kind == "routes":
                    self.routes = RouteTable(event.routes)
                    for route_listener in self.route_listeners:
                        route_listener(event.routes)
                    self._outbox.put_nowait(pb.IngressMessage(routes_applied=event.routes.version))
                    if not self.connected.is_set():
                        log.info("connected to scheduler %s", self.address)
                    self.connected.set()

    def _lost(self) -> None:
        self.connected.clear()
        self._epoch += 1
        self.held.clear()
        pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(Rejected(503, "the ingress lost its connection to the scheduler; retry"))

    async def acquire(self, function_id: str) -> Slot:
        """A container slot for one request: one this ingress holds, or one the scheduler places.
        The caller must finish() it."""
        held = self.held.take(function_id)
        if held is not None:
            return held
        if not self.connected.is_set():
            raise Rejected(503, "the scheduler is unreachable; retry shortly")
        slot_id = next(self._ids)
        future: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        self._pending[slot_id] = (future, function_id)
        self._outbox.put_nowait(pb.IngressMessage(acquire=pb.Acquire(slot_id=slot_id, function_id=function_id)))
        try:
            return await asyncio.wait_for(future, self.placement_timeout)
        except TimeoutError:
            self._pending.pop(slot_id, None)
            self._send_release(slot_id)
            raise Rejected(503, f"no container was free within {self.placement_timeout:g} s; retry") from None
        except BaseException:
            self._pending.pop(slot_id, None)
            if future.done() and not future.cancelled() and future.exception() is None:
                self.finish(future.result())  # placed just as its client left
            else:
                self._send_release(slot_id)
            raise

    def finish(self, slot: Slot, unreachable: bool = False, retire: bool = False) -> None:
        """The request on `slot` is over: hold the slot for the next one, or give it back. Once
        per request: a held slot outlives its requests (ingress/proxy.py's _SlotUse). `retire`:
        its container takes no new inputs (protos Retiring)."""
        if slot.epoch != self._epoch:
            return  # granted on a stream that is gone; the scheduler freed it then
        if unreachable or retire:
            slot.holdable = False
        if self.held.keep(slot):
            return
        self._send_release(slot.slot_id, unreachable, retire)
        if unreachable or retire:
            self.held.drop_container(slot.container_id)

    def _send_release(self, slot_id: int, unreachable: bool = False, retire: bool = False) -> None:
        release = pb.Release(slot_id=slot_id, unreachable=unreachable, retire=retire)
        self._outbox.put_nowait(pb.IngressMessage(release=release))
