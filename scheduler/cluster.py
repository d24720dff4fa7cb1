"""The scheduler's request-placement and container-lifecycle logic.

All methods run on the scheduler's event loop and never block; the servicer feeds them events
from worker and ingress streams, and their decisions go out as messages on those streams.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence

from protos import overrides as wire_overrides
from protos import stoker_pb2 as pb
from scheduler import autoscaler, gpus, placement, resources
from scheduler.container_start import start_command
from scheduler.model import Container, FunctionState, IngressSession, SlotRefused, Waiter, WorkerSession
from scheduler.snapshots import live_snapshots

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 10.0
TERMINATE_GRACE_SECONDS = 1.0  # a container terminated with a cancelled call: SIGKILL this soon after SIGTERM
START_BUDGET = 200  # container starts per upkeep tick (0.25 s): 800/s, never a long loop stall
# Replaced function ids remembered, so a request an ingress routed by its previous table still
# finds the new version; every reload of `stoker serve` adds one per function.
REMEMBERED_SUCCESSIONS = 1024


class Start(enum.Enum):
    """What one try to start a container came to."""

    STARTED = "started"
    NO_ROOM = "no room"  # no worker has the CPU or memory free now (idle containers may make it)
    LATER = "later"  # no worker has what it needs now, or this tick's start budget is spent


class Cluster:
    def __init__(self, queue_timeout: float, workspace: str = "ws", call_key: bytes = b"") -> None:
        self.queue_timeout = queue_timeout
        self.workspace = workspace
        self.route_version = 0
        self.start_budget = START_BUDGET
        # Bumped whenever a worker's free CPU or memory may have grown or shrunk: a function held
        # back for room is tried again only then, not on each of its queued requests.
        self.capacity_epoch = 0
        self._call_key = call_key  # mints containers' call credentials (scheduler/call_credentials.py)
        self._proxy_tokens: list[pb.ProxyToken] = []  # what ingresses check proxy auth against
        self._secrets: Mapping[str, Mapping[str, str]] = {}  # name -> values, for container environments
        self._routes_changed = asyncio.Event()  # set whenever an ingress acknowledges a table
        self.functions: dict[str, FunctionState] = {}
        self.containers: dict[str, Container] = {}
        self.workers: dict[str, WorkerSession] = {}
        self.ingresses: dict[str, IngressSession] = {}
        self._successors: OrderedDict[str, str] = OrderedDict()  # replaced function id -> its heir's
        self.exit_listeners: list[Callable[[Container], None]] = []  # told of every container gone

    def app_containers(self, app_id: str) -> int:
        return sum(1 for c in self.containers.values() if c.function.app.app_id == app_id)

    def set_secrets(self, secrets: Mapping[str, Mapping[str, str]]) -> None:
        """The named secrets, for the environments of containers started from now on."""
        self._secrets = secrets

    def has_secret(self, name: str) -> bool:
        return name in self._secrets

    def set_proxy_tokens(self, tokens: list[pb.ProxyToken]) -> None:
        """The proxy-auth tokens every ingress checks against, sent to them at once."""
        self._proxy_tokens = tokens
        self.broadcast_edge()

    # ------------------------------------------------------------ functions

    def activate(self, functions: list[FunctionState]) -> None:
        """Make a new app version live; the previous functions of the same names retire."""
        for fn in functions:
            self.functions[fn.id] = fn
        self.scale_all()
        self.broadcast_routes()

    def retire(self, old: Iterable[FunctionState], successors: dict[str, FunctionState] | None = None) -> None:
        """Take functions out of service: queued requests move to their successor (same name in
        the new version) or are refused; idle containers stop, busy ones drain."""
        old = list(old)
        # A class's parameter pools go with it, each to the same pool of its successor.
        for fn in [pool for f in old for pool in (f, *f.pools.values())]:
            fn.retired = True
            self.functions.pop(fn.id, None)
            heir = (successors or {}).get(fn.spec.name)
            if heir is not None and (fn.parameters or fn.overrides):
                heir = self.pool(heir, fn.parameters, fn.overrides)
            if heir is not None:
                self._remember_succession(fn, heir)
            while fn.queue:
                waiter = fn.queue.popleft()
                if heir is not None:
                    heir.queue.append(waiter)
                else:
                    self._reject(waiter, pb.REFUSAL_APP_STOPPED, f"the app {fn.app.name!r} was stopped")
            for c in list(fn.containers.values()):
                self._drain(c)
            if heir is not None:
                self._dispatch(heir)
                self._scale(heir)
        self.broadcast_routes()
        if any(fn.spec.enable_memory_snapshot for fn in old):
            command = live_snapshots(self.functions.values())
            for worker in self.workers.values():
                worker.outbox.put_nowait(command)  # their templates of what retired go

    def pool(self, fn: FunctionState, parameters: bytes, overrides: bytes = b"") -> FunctionState:
        """The pool of containers of `fn` for one set of a class's (canonical) parameters and of
        options that calls override (canonical, checked: Calls._callable), made on first use and
        scaled like any function; `fn` itself for the defaults and the deployed options. Web
        requests always reach `fn` itself."""
        if not (parameters or overrides) or fn.retired:
            return fn
        pool = fn.pools.get((parameters, overrides))
        if pool is None:
            spec = wire_overrides.apply(fn.spec, wire_overrides.parse(overrides)) if overrides else fn.spec
            digest = hashlib.sha256(b"%d:%b%b" % (len(parameters), parameters, overrides)).hexdigest()[:12]
            pool = FunctionState(
                id=f"{fn.id}({digest})",
                app=fn.app,
                spec=spec,
                web=[],
                gpu=gpus.parse_gpu(spec.gpu) if overrides else fn.gpu,
                parameters=parameters,
                overrides=overrides,
            )
            fn.pools[(parameters, overrides)] = pool
            self.functions[pool.id] = pool
        return pool

    def _remember_succession(self, old: FunctionState, heir: FunctionState) -> None:
        self._successors[old.id] = heir.id
        while len(self._successors) > REMEMBERED_SUCCESSIONS:
            self._successors.popitem(last=False)

    def live_function(self, function_id: str) -> FunctionState | None:
        """The function a request for this id belongs to now: itself, or the version that replaced
        it (an ingress may route by the table it had just before a reload). None once it is gone."""
        fn = self.functions.get(function_id)
        while fn is None and function_id in self._successors:  # ids are fresh: no cycles
            function_id = self._successors[function_id]
            fn = self.functions.get(function_id)
        return fn

    def route_table(self) -> pb.RouteTable:
        # Later activations win a shared host: a newer `serve` of an app takes its label over.
        ordered = sorted(self.functions.values(), key=lambda f: f.app.created_at)
        return pb.RouteTable(
            version=self.route_version,
            routes=[
                pb.Route(
                    hosts=route.hosts,
                    function_id=fn.id,
                    requires_proxy_auth=route.requires_proxy_auth,
                    workspace=self.workspace,
                    method_name=route.method_name,
                )
                for fn in ordered
                for route in fn.web
            ],
        )

    def edge_config(self) -> pb.EdgeConfig:
        return pb.EdgeConfig(proxy_tokens=self._proxy_tokens, ingress_count=len(self.ingresses))

    def broadcast_edge(self) -> None:
        event = pb.IngressEvent(edge=self.edge_config())
        for ingress in self.ingresses.values():
            ingress.outbox.put_nowait(event)

    def broadcast_routes(self) -> None:
        self.route_version += 1
        event = pb.IngressEvent(routes=self.route_table())
        for ingress in self.ingresses.values():
            ingress.outbox.put_nowait(event)

    # ------------------------------------------------------------ requests

    def acquire(self, ingress: IngressSession, slot_id: int, function_id: str) -> None:
        """Place a slot an ingress asked for (it names the slot: `slot_id`), now or once one is
        free; the answer goes out on its stream as an Assignment or a Rejection."""
        fn = self.live_function(function_id)
        if fn is None:
            refused = SlotRefused(pb.REFUSAL_APP_STOPPED, "this endpoint's app was stopped")
            self._send(ingress, _rejection(slot_id, refused))
            return
        container = placement.pick_container(fn.containers.values(), fn.max_inputs)
        if container is not None and not fn.queue:
            container.in_flight += 1
            self._assign(ingress, slot_id, container)
            return
        self._enqueue(fn, self._ingress_waiter(ingress, slot_id))

    def _ingress_waiter(self, ingress: IngressSession, slot_id: int) -> Waiter:
        def grant(container: Container) -> None:
            ingress.waiting.pop(slot_id, None)
            self._assign(ingress, slot_id, container)

        def refuse(refused: SlotRefused) -> None:
            ingress.waiting.pop(slot_id, None)
            self._send(ingress, _rejection(slot_id, refused))

        waiter = Waiter(time.monotonic() + self.queue_timeout, grant, refuse, gone=lambda: ingress.closed)
        ingress.waiting[slot_id] = waiter
        return waiter

    async def acquire_slot(self, fn: FunctionState) -> Container:
        """A slot for a function call the scheduler runs itself, placed by the same rules as an
        HTTP request (queued, scaled for, timed out); the caller must release_slot() it.
        Raises SlotRefused when it cannot be placed."""
        container = placement.pick_container(fn.containers.values(), fn.max_inputs)
        if container is not None and not fn.queue:
            container.in_flight += 1
            return container
        slot: asyncio.Future[Container] = asyncio.get_running_loop().create_future()
        waiter = Waiter(time.monotonic() + self.queue_timeout, slot.set_result, slot.set_exception, gone=slot.done)
        self._enqueue(fn, waiter)
        try:
            return await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled() and slot.exception() is None:
                self.release_slot(slot.result())  # placed just as its caller left
            else:
                self._forget_waiter(waiter)
            raise

    def _enqueue(self, fn: FunctionState, waiter: Waiter) -> None:
        if not fn.queue and any(c.in_flight for c in fn.containers.values()):
            # Slots that ingresses hold idle between requests are not free to the scheduler:
            # once something has to wait, it wants them back (if any is out, any may be held).
            self._recall(fn)
        fn.queue.append(waiter)
        self._scale(fn)

    def _recall(self, fn: FunctionState) -> None:
        event = pb.IngressEvent(recall=pb.Recall(function_id=fn.id))
        for ingress in self.ingresses.values():
            ingress.outbox.put_nowait(event)

    def release(self, ingress: IngressSession, slot_id: int, unreachable: bool = False, retire: str = "") -> None:
        container = ingress.assigned.pop(slot_id, None)
        if container is None:
            waiter = ingress.waiting.pop(slot_id, None)
            if waiter is not None:  # its client left while it was queued
                self._forget_waiter(waiter)
            return
        self.release_slot(container, unreachable, retire)

    def release_slot(self, container: Container, unreachable: bool = False, retire: str = "") -> None:
        """Give a slot back. `retire` (why): the container takes no new inputs (protos Retiring);
        it stops once its other inputs are done, and another starts if one is needed."""
        if retire and container.state != "draining":
            log.warning("%s is retiring (%s); placing nothing more on it", container.id, retire)
            self._draining(container)
            self._scale(container.function)
        if unreachable and container.state != "draining":
            # Its worker will report the exit; until then no request may go there.
            log.warning("%s cannot be reached; placing nothing more on it", container.id)
            container.in_flight -= 1
            self._stop(container)
            self._scale(container.function)
            return
        container.in_flight -= 1
        if container.in_flight == 0:
            container.idle_since = time.monotonic()
            if container.state == "draining":
                self._stop(container)
                return
        self._dispatch(container.function)

    def _forget_waiter(self, waiter: Waiter) -> None:
        """Take a waiter whose caller left out of whichever queue holds it (a retired function's
        waiters moved to its successor's queue)."""
        for fn in self.functions.values():
            if waiter in fn.queue:
                fn.queue.remove(waiter)
                return

    def _assign(self, ingress: IngressSession, slot_id: int, container: Container) -> None:
        """Tell the ingress where its slot is (counted in `container.in_flight` already)."""
        ingress.assigned[slot_id] = container
        fn = container.function
        self._send(
            ingress,
            pb.IngressEvent(
                assignment=pb.Assignment(
                    slot_id=slot_id,
                    container_id=container.id,
                    address=container.address,
                    # Held while nothing waits for the function: a request that comes to wait
                    # has the held slots recalled at once (_enqueue), idle ones back within a
                    # round trip. So a max_inputs=1 container serves one ingress's requests one
                    # after another without a placement each.
                    may_hold=not fn.queue,
                )
            ),
        )

    def _dispatch(self, fn: FunctionState) -> None:
        """Hand queued requests to free slots, first come first served."""
        while fn.queue:
            container = placement.pick_container(fn.containers.values(), fn.max_inputs)
            if container is None:
                return
            waiter = fn.queue.popleft()
            if not waiter.gone():
                container.in_flight += 1
                waiter.grant(container)

    def _reject(self, waiter: Waiter, reason: pb.Refusal.ValueType, message: str) -> None:
        if not waiter.gone():
            waiter.refuse(SlotRefused(reason, message))

    @staticmethod
    def _send(ingress: IngressSession, event: pb.IngressEvent) -> None:
        ingress.outbox.put_nowait(event)

    # ------------------------------------------------------------ scaling

    def scale_all(self) -> None:
        for fn in list(self.functions.values()):
            self._scale(fn)

    def _desired(self, fn: FunctionState) -> int:
        spec = fn.spec
        return autoscaler.desired_containers(
            in_flight=sum(c.in_flight for c in fn.containers.values()),
            queued=len(fn.queue),
            target_inputs=spec.target_inputs or fn.max_inputs,
            buffer_containers=spec.buffer_containers,
            min_containers=spec.min_containers,
            max_containers=spec.max_containers,
        )

    def _scale(self, fn: FunctionState) -> None:
        if fn.retired:
            return
        live = sum(1 for c in fn.containers.values() if c.state != "draining")
        wanted = autoscaler.containers_to_start(desired=self._desired(fn), live=live)
        epoch, wanted_then = fn.held_back
        if wanted and epoch == self.capacity_epoch and wanted <= wanted_then:
            return  # no room came free since the last try, nor is more wanted: nothing would change
        for started in range(wanted):
            outcome = self._start(fn)
            if outcome is not Start.STARTED:  # why is in fn.scaling, unless the tick's budget ran out
                if outcome is Start.NO_ROOM:
                    self._reclaim_idle(fn, wanted - started)
                    fn.held_back = (self.capacity_epoch, wanted)
                return
        limit = fn.spec.max_containers
        if fn.queue and limit and live + wanted >= limit:
            fn.scaling = f"at max_containers={limit}"
        else:
            fn.scaling = ""

    def _scale_held_back(self) -> None:
        """Capacity came free: start what functions held back for it want."""
        for fn in list(self.functions.values()):
            if fn.scaling and fn.queue:
                self._scale(fn)

    def _start(self, fn: FunctionState) -> Start:
        """Start one container on the least busy worker that has the GPUs it needs free now.

        Each start scans the workers, so starts are rationed per upkeep tick (START_BUDGET): a
        deploy of thousands of containers is spread over ticks instead of stalling the event
        loop (and with it every heartbeat) for seconds."""
        if self.start_budget <= 0:
            return Start.LATER  # the next tick goes on
        request = fn.request
        reachable = placement.port_free(self.workers.values(), fn.port)
        candidates = resources.with_room(reachable, request)
        if fn.gpu:
            fits: dict[str, tuple[int, ...]] = {}
            for w in candidates:
                found = gpus.choose_devices(fn.gpu, w.info.gpus, w.gpus_in_use)
                if found is not None:
                    fits[w.info.worker_id] = found
            worker = placement.pick_worker(w for w in candidates if w.info.worker_id in fits)
        else:
            worker = placement.pick_worker(candidates)
        if worker is None:
            inventories = self.gpu_inventories() if fn.gpu else {}
            if gpus.unmet(fn.gpu, inventories):
                message = gpus.unmet_message(fn.spec.name, fn.spec.gpu, fn.gpu, inventories)
                self._reject_all(fn, pb.REFUSAL_NO_GPU, message)
            elif (never := resources.never_fits(fn.spec.name, request, self.workers.values())) is not None:
                fn.scaling = never
                self._reject_all(fn, pb.REFUSAL_NO_CAPACITY, never)
            elif reachable and len(candidates) < len(reachable):
                fn.scaling = resources.held_back(request, reachable)
                return Start.NO_ROOM
            return Start.LATER  # wait: a worker may join or free its GPUs
        self.start_budget -= 1
        devices = fits[worker.info.worker_id] if fn.gpu else ()
        container = Container(
            id=f"ct-{uuid.uuid4().hex[:12]}", function=fn, worker=worker, gpu_indices=devices, request=request
        )
        worker.reserve(request)
        self.capacity_epoch += 1
        self.containers[container.id] = container
        fn.containers[container.id] = container
        worker.containers.add(container.id)
        worker.gpus_in_use.update(devices)
        if fn.port and not worker.own_networks:  # else the port is the container's own
            worker.ports_in_use.add(fn.port)
        start = start_command(fn, container, self._secrets, self._call_key, self._app_functions(fn))
        worker.outbox.put_nowait(pb.WorkerCommand(start=start))
        log.info(
            "starting %s for %s on worker %s%s",
            container.id,
            fn.id,
            worker.id,
            f" with GPUs {list(devices)}" if devices else "",
        )
        return Start.STARTED

    def _reclaim_idle(self, fn: FunctionState, count: int) -> None:
        """`count` containers of `fn` wait for CPU or memory that idle containers of other
        functions hold: stop the longest idle of those (never below what their functions want kept,
        min_containers included) until the workers will have room for them; their exits start
        `fn`'s containers. Containers already on their way out count as room."""
        one = fn.request
        for worker in placement.port_free(self.workers.values(), fn.port):
            if count <= 0:
                return
            on_worker = [self.containers[i] for i in worker.containers if i in self.containers]
            free = resources.Free.of(worker, [c.request for c in on_worker if c.state == "draining"])
            idle = sorted(
                (c for c in on_worker if c.state == "warm" and c.in_flight == 0 and c.function is not fn),
                key=lambda c: c.idle_since,
            )
            chosen: list[Container] = []
            for c in idle:
                if free.how_many(one) >= count:
                    break
                kept = c.function
                live = sum(1 for o in kept.containers.values() if o.state != "draining" and o not in chosen)
                if live > self._desired(kept):
                    chosen.append(c)
                    free = free.plus(c.request)
            for c in chosen:
                log.info("stopping %s, idle, to make room for %s", c.id, fn.id)
                self._stop(c)
            count -= free.how_many(one)

    def gpu_inventories(self) -> dict[str, Sequence[pb.Gpu]]:
        """Each connected worker's GPUs, by worker id."""
        return {w.id: w.info.gpus for w in self.workers.values()}

    def gpu_warnings(self, functions: Iterable[pb.FunctionSpec]) -> list[str]:
        """For a deploy: the functions whose GPUs no connected worker has, so that their requests
        would be refused (a worker that has them may still join; none connected: nothing to say)."""
        inventories = self.gpu_inventories()
        warnings = []
        for spec in functions:
            options = gpus.parse_gpu(spec.gpu)
            if gpus.unmet(options, inventories):
                warnings.append(
                    gpus.unmet_message(spec.name, spec.gpu, options, inventories)
                    + "; until then its requests are refused with 503"
                )
        return warnings

    def _reject_all(self, fn: FunctionState, reason: pb.Refusal.ValueType, message: str) -> None:
        while fn.queue:
            self._reject(fn.queue.popleft(), reason, message)

    def _app_functions(self, fn: FunctionState) -> list[FunctionState]:
        return [f for f in self.functions.values() if f.app.app_id == fn.app.app_id and f.app.version == fn.app.version]

    def _drain(self, container: Container) -> None:
        if container.in_flight == 0 or container.state == "starting":
            self._stop(container)
        else:
            self._draining(container)

    def _draining(self, container: Container) -> None:
        """Take no more requests there; slots that ingresses hold on it would keep it busy."""
        container.state = "draining"
        if container.in_flight:
            self._recall(container.function)

    def _stop(self, container: Container, grace: float = STOP_GRACE_SECONDS) -> None:
        self._draining(container)
        container.worker.outbox.put_nowait(
            pb.WorkerCommand(stop=pb.StopContainer(container_id=container.id, grace_seconds=grace))
        )

    def terminate(self, container: Container) -> None:
        """Stop the container now, whatever it runs (FunctionCall.cancel(terminate_containers=True))."""
        self._stop(container, TERMINATE_GRACE_SECONDS)

    def tick(self, now: float) -> None:
        """Periodic upkeep: queue timeouts, scale-down, and scale-up left over from earlier ticks."""
        self.start_budget = START_BUDGET
        for fn in list(self.functions.values()):
            while fn.queue and fn.queue[0].deadline <= now:
                self._reject(
                    fn.queue.popleft(),
                    pb.REFUSAL_QUEUE_TIMEOUT,
                    (
                        f"no container of {fn.spec.name!r} had a free slot within {self.queue_timeout:g} s; "
                        "retry later or raise max_containers"
                    ),
                )
            for c in autoscaler.idle_to_stop(
                list(fn.containers.values()),
                now=now,
                scaledown_window=fn.spec.scaledown_window or 60.0,
                keep=self._desired(fn),
            ):
                log.info("stopping %s: idle for %.0f s", c.id, now - c.idle_since)
                self._stop(c)
            self._scale(fn)
            self._forget_unused_pools(fn)

    def _forget_unused_pools(self, fn: FunctionState) -> None:
        """Drop the pools of `fn` (parameters, overridden options) that hold no container and no
        waiting call (a later call makes one anew): callers choose them freely, and the pools they
        tried once must not pile up in the scheduler. A function with min_containers keeps every
        pool's."""
        if fn.spec.min_containers:
            return
        for key, pool in list(fn.pools.items()):
            if not pool.containers and not pool.queue:
                del fn.pools[key]
                self.functions.pop(pool.id, None)

    # ------------------------------------------------------------ workers

    def add_worker(self, worker: WorkerSession) -> None:
        self.workers[worker.id] = worker
        self.capacity_epoch += 1
        # First, so that a worker back from a disconnection drops what retired meanwhile.
        worker.outbox.put_nowait(live_snapshots(self.functions.values()))
        self.scale_all()

    def remove_worker(self, worker: WorkerSession) -> None:
        if self.workers.get(worker.id) is worker:
            del self.workers[worker.id]
        for container_id in list(worker.containers):
            self.container_exited(container_id, "its worker went away")
        self.scale_all()

    def worker_heartbeat(self, worker: WorkerSession, beat: pb.WorkerHeartbeat) -> None:
        worker.last_heartbeat = time.monotonic()
        if beat.gpus:
            del worker.info.gpus[:]
            worker.info.gpus.extend(beat.gpus)

    def container_started(self, container_id: str, address: str) -> None:
        container = self.containers.get(container_id)
        if container is None:
            return
        container.address = address
        container.idle_since = time.monotonic()
        if container.state == "starting":
            container.state = "warm"
            log.info("%s is warm at %s", container_id, address)
            self._dispatch(container.function)
        if container.function.retired and container.in_flight == 0:
            self._stop(container)

    def container_exited(self, container_id: str, reason: str) -> None:
        container = self.containers.pop(container_id, None)
        if container is None:
            return
        container.exit_reason = reason
        container.exited.set()
        fn = container.function
        fn.containers.pop(container_id, None)
        container.worker.containers.discard(container_id)
        container.worker.gpus_in_use.difference_update(container.gpu_indices)
        container.worker.ports_in_use.discard(fn.port)
        container.worker.give_back(container.request)
        self.capacity_epoch += 1
        was_starting = container.state == "starting"
        self._draining(container)
        log.info("%s exited: %s", container_id, reason or "stopped")
        for listener in self.exit_listeners:
            listener(container)
        if was_starting and fn.queue and not any(c.state == "warm" for c in fn.containers.values()):
            # A container that cannot start would fail every retry the same way: say so now.
            self._reject_all(
                fn, pb.REFUSAL_START_FAILED, f"the container for {fn.spec.name!r} failed to start: {reason}"
            )
        else:
            self._scale(fn)
        self._scale_held_back()  # its CPU and memory are free again

    # ------------------------------------------------------------ ingresses

    def routes_applied(self, ingress: IngressSession, version: int) -> None:
        ingress.routes_applied = max(ingress.routes_applied, version)
        self._routes_changed.set()

    async def wait_routes_applied(self) -> None:
        """Until every connected ingress routes by the current table, so that a URL is live (or
        gone) by the time deploy or stop returns. Callers bound it with a timeout."""
        version = self.route_version
        while any(i.routes_applied < version for i in self.ingresses.values()):
            self._routes_changed.clear()
            await self._routes_changed.wait()

    def add_ingress(self, ingress: IngressSession) -> None:
        self.ingresses[ingress.id] = ingress
        self.broadcast_edge()  # every ingress's share of the rate limit changes
        ingress.outbox.put_nowait(pb.IngressEvent(routes=self.route_table()))

    def remove_ingress(self, ingress: IngressSession) -> None:
        ingress.closed = True
        if self.ingresses.get(ingress.id) is ingress:
            del self.ingresses[ingress.id]
        self.broadcast_edge()
        for slot_id in list(ingress.assigned):
            self.release(ingress, slot_id)
        ingress.waiting.clear()
        for fn in self.functions.values():
            fn.queue = type(fn.queue)(w for w in fn.queue if not w.gone())


def _rejection(slot_id: int, refused: SlotRefused) -> pb.IngressEvent:
    return pb.IngressEvent(rejection=pb.Rejection(slot_id=slot_id, reason=refused.reason, message=refused.message))
