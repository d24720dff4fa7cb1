"""The scheduler's live view of the cluster: workers, ingresses, functions and containers."""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Callable
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
