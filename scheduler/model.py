"""The scheduler's live view of the cluster: workers, ingresses, functions and containers."""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from dataclasses import dataclass, field

from protos import stoker_pb2 as pb
from scheduler.gpus import GpuOption
from scheduler.image_spec import image_id
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
    def host(self) -> str:
        """The machine, whose network its containers share with other workers on it."""
        return self.info.hostname or self.id


@dataclass(eq=False)
class IngressSession:
    """A connected ingress: its event stream and the requests placed for it."""

    id: str
    outbox: asyncio.Queue[pb.IngressEvent | None] = field(default_factory=asyncio.Queue)  # None: the stream ends
    assigned: dict[int, Container] = field(default_factory=dict)
    routes_applied: int = 0  # the newest route table version it acknowledged


@dataclass(eq=False)
class Waiter:
    """A request waiting for a free slot: an ingress's HTTP request, or (ingress None) a function
    call the scheduler runs itself, whose `slot` future gets the container or a SlotRefused."""

    ingress: IngressSession | None
    request_id: int
    deadline: float
    slot: asyncio.Future[Container] | None = None


class SlotRefused(Exception):
    """A function call could not be placed; `http_status` as an HTTP request would have got."""

    def __init__(self, http_status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
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


@dataclass(eq=False)
class FunctionState:
    """One function of one version of an app, with its containers and waiting requests."""

    id: str
    app: AppRecord
    spec: pb.FunctionSpec
    hosts: list[str]
    url: str
    gpu: tuple[GpuOption, ...] = ()  # what each container needs; () for none
    containers: dict[str, Container] = field(default_factory=dict)
    queue: deque[Waiter] = field(default_factory=deque)
    retired: bool = False  # a newer version replaced it, or the app stopped

    @property
    def max_inputs(self) -> int:
        return max(1, self.spec.max_inputs)

    @functools.cached_property
    def image_id(self) -> str:
        """The id of its image, as workers know it; "" for the worker's own environment."""
        return image_id(self.spec.image) if self.spec.HasField("image") else ""

    @property
    def port(self) -> int:
        """The port each container listens on, for a @web_server; 0 for any other function."""
        return self.spec.web.port if self.spec.web.kind == "web_server" else 0
