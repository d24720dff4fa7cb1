"""The scheduler's live view of the cluster: workers, ingresses, functions and containers."""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from protos import call_rules
from protos import stoker_pb2 as pb
from protos.overrides import describe as describe_overrides
from protos.overrides import parse as parse_overrides
from scheduler.gpus import GpuOption
from scheduler.image_spec import image_id
from scheduler.resources import MIB, NO_REQUEST, Request
from scheduler.store import AppRecord


@dataclass(eq=False)
class WorkerSession:
    """A registered worker and the command stream to it."""

    info: pb.WorkerRegister
    outbox: asyncio.Queue[pb.WorkerCommand] = field(default_factory=asyncio.Queue)
    containers: set[str] = field(default_factory=set)
    last_heartbeat: float = field(default_factory=time.monotonic)
    gpus_in_use: set[int] = field(default_factory=set)  # indices into info.gpus
    ports_in_use: set[int] = field(default_factory=set)  # held by its @web_server containers
    cpu_reserved: float = 0.0  # what its containers requested (scheduler/resources.py)
    memory_reserved_mib: int = 0
    reader: asyncio.Future[None] | None = None  # consumes its stream; cancelled to hang up on it

    def hang_up(self) -> None:
        """End this worker's stream: when it wakes up, it registers anew with no containers."""
        if self.reader is not None:
            self.reader.cancel()

    @property
    def id(self) -> str:
        return self.info.worker_id

    @property
    def container_count(self) -> int:
        return len(self.containers)

    @property
    def cpu_capacity(self) -> float:
        return float(self.info.cpu_count) if self.info.cpu_count > 0 else math.inf  # 0: it did not say

    @property
    def memory_capacity_mib(self) -> int:
        return self.info.memory_bytes // MIB  # 0: it did not say, and is not limited

    def reserve(self, request: Request) -> None:
        self.cpu_reserved += request.cpu
        self.memory_reserved_mib += request.memory_mib

    def give_back(self, request: Request) -> None:
        self.cpu_reserved = max(0.0, self.cpu_reserved - request.cpu)
        self.memory_reserved_mib = max(0, self.memory_reserved_mib - request.memory_mib)

    @property
    def own_networks(self) -> bool:
        """Whether its containers each have a network namespace (and ports) of their own."""
        return self.info.own_networks

    @property
    def host(self) -> str:
        """The machine, whose network its containers share with other workers on it."""
        return self.info.hostname or self.id


@dataclass(eq=False)
class IngressSession:
    """A connected ingress: its event stream and the slots it asked for, by the ingress's ids."""

    id: str
    outbox: asyncio.Queue[pb.IngressEvent | None] = field(default_factory=asyncio.Queue)  # None: the stream ends
    assigned: dict[int, Container] = field(default_factory=dict)  # slot id -> where it is
    waiting: dict[int, Waiter] = field(default_factory=dict)  # slot id -> its place in a queue
    routes_applied: int = 0  # the newest route table version it acknowledged
    closed: bool = False  # its stream ended: nothing more is placed for it


@dataclass(eq=False)
class Waiter:
    """A wait for a free slot, by an ingress's request or by a function call the scheduler runs
    itself. The cluster hands it a container with `grant` (the slot already counted as taken), or
    says why it gets none with `refuse`; once `gone()`, its caller left and it is skipped."""

    deadline: float
    grant: Callable[[Container], None]
    refuse: Callable[[SlotRefused], None]
    gone: Callable[[], bool]


class SlotRefused(Exception):
    """A slot could not be placed: `reason` says why, neutrally (each caller maps it to its own
    status), and `message` says so in words."""

    def __init__(self, reason: pb.Refusal.ValueType, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(eq=False)
class Container:
    id: str
    function: FunctionState
    worker: WorkerSession
    state: str = "starting"  # starting | warm | draining
    address: str = ""
    in_flight: int = 0
    idle_since: float = field(default_factory=time.monotonic)
    gpu_indices: tuple[int, ...] = ()
    request: Request = NO_REQUEST  # the CPU and memory it reserves on its worker
    # Set when its worker said it exited, and why ("": it stopped as asked): a call it was
    # running fails with the why ("ran out of memory at 256 MiB"), which comes a moment after
    # the call's stream broke.
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    exit_reason: str = ""


@dataclass(eq=False)
class WebRoute:
    """One web endpoint of a function: the function's own, or one per web method of a class."""

    name: str  # what deploy prints: `square`, or `Model.web`
    method_name: str  # the class's method; "" for a function
    hosts: list[str]
    url: str
    requires_proxy_auth: bool


@dataclass(eq=False)
class FunctionState:
    """One function (or class) of one version of an app, with its containers and waiting
    requests. A class instance with parameters other than the defaults, and calls that override
    options (`with_options()`), run in a pool of their own: a FunctionState with those
    `parameters` and `overrides` (its `spec` the deployed one with them applied), made on first
    use (Cluster.pool)."""

    id: str
    app: AppRecord
    spec: pb.FunctionSpec
    web: list[WebRoute]
    gpu: tuple[GpuOption, ...] = ()  # what each container needs; () for none
    containers: dict[str, Container] = field(default_factory=dict)
    queue: deque[Waiter] = field(default_factory=deque)
    retired: bool = False  # a newer version replaced it, or the app stopped
    parameters: bytes = b""  # canonical (protos/parameters.py); b"": the defaults
    overrides: bytes = b""  # canonical (protos/overrides.py); b"": the deployed options
    pools: dict[tuple[bytes, bytes], FunctionState] = field(default_factory=dict)  # by (parameters, overrides)
    scaling: str = ""  # why the autoscaler starts none of the containers it wants now ("": it is not held back)
    # (Cluster.capacity_epoch, containers wanted) when it last found no room for them.
    held_back: tuple[int, int] = (-1, 0)

    @property
    def url(self) -> str:
        """A web function's URL; "" for other functions and for classes."""
        return self.web[0].url if self.web and not self.web[0].method_name else ""

    @property
    def shown_name(self) -> str:
        """Its name as `stoker status` shows it: a pool of overridden options says which."""
        if not self.overrides:
            return self.spec.name
        return f"{self.spec.name}.with_options({describe_overrides(parse_overrides(self.overrides))})"

    @functools.cached_property
    def max_inputs(self) -> int:
        """Inputs each container takes at once: `@concurrent`'s max_inputs, or a batched
        function's max_batch_size (its batches fill from that many slots)."""
        return max(1, self.spec.max_inputs, call_rules.batch_size(self.spec))

    @functools.cached_property
    def request(self) -> Request:
        """The CPU and memory each of its containers reserves (Modal's defaults when unnamed)."""
        return Request.of(self.spec)

    @functools.cached_property
    def image_id(self) -> str:
        """The id of its image, as workers know it; "" for the worker's own environment."""
        return image_id(self.spec.image) if self.spec.HasField("image") else ""

    @functools.cached_property
    def port(self) -> int:
        """The port each container listens on, for a @web_server (a class's, if one of its methods
        is one); 0 for any other function."""
        webs = [self.spec.web, *(m.web for m in self.spec.methods)]
        return next((w.port for w in webs if w.kind == "web_server"), 0)
