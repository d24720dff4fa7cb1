"""CPU and memory as placement resources: Modal's `cpu=` and `memory=` requests, against what each
worker has.

Each container reserves its function's request on the worker it starts on (Modal's defaults when
the app names none: 0.125 of a core and 128 MiB), and gives it back when it exits. A worker takes
a container only while the requests fit its CPU count and memory, so a burst against a
`max_inputs=1` endpoint queues for slots instead of forking a process per request onto a few
cores; requests are a floor each container is sure of, not a cap (the limit of a `(request,
limit)` pair is the cgroup's, on the worker).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from protos import stoker_pb2 as pb

DEFAULT_CPU = 0.125  # Modal's default request, in cores
DEFAULT_MEMORY_MIB = 128  # and in MiB
MIB = 1024 * 1024
# Requests are summed in floating point: 8 x 0.125 must fit 1 core exactly.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Request:
    """What one container of a function reserves."""

    cpu: float
    memory_mib: int

    @classmethod
    def of(cls, spec: pb.FunctionSpec) -> Request:
        return cls(spec.cpu or DEFAULT_CPU, spec.memory_mib or DEFAULT_MEMORY_MIB)

    def describe(self) -> str:
        return f"{self.cpu:g} CPU and {self.memory_mib} MiB"


NO_REQUEST = Request(0.0, 0)


class WorkerResources(Protocol):
    @property
    def cpu_capacity(self) -> float: ...

    @property
    def memory_capacity_mib(self) -> int: ...  # 0: not known, not limited

    @property
    def cpu_reserved(self) -> float: ...

    @property
    def memory_reserved_mib(self) -> int: ...


W = TypeVar("W", bound=WorkerResources)


def fits_now(worker: WorkerResources, request: Request) -> bool:
    """Whether the worker has the request free besides what its containers reserved."""
    if worker.cpu_reserved + request.cpu > worker.cpu_capacity + _EPSILON:
        return False
    memory = worker.memory_capacity_mib
    return not memory or worker.memory_reserved_mib + request.memory_mib <= memory


@dataclass(frozen=True)
class Free:
    """What a worker would have free (`memory_mib` None: its memory is not limited)."""

    cpu: float
    memory_mib: int | None

    @classmethod
    def of(cls, worker: WorkerResources, leaving: Iterable[Request] = ()) -> Free:
        """What it has free once the containers whose requests are `leaving` have exited."""
        leaving = list(leaving)
        cpu = worker.cpu_capacity - worker.cpu_reserved + sum(r.cpu for r in leaving)
        if not worker.memory_capacity_mib:
            return cls(cpu, None)
        memory = worker.memory_capacity_mib - worker.memory_reserved_mib + sum(r.memory_mib for r in leaving)
        return cls(cpu, memory)

    def plus(self, request: Request) -> Free:
        return Free(self.cpu + request.cpu, None if self.memory_mib is None else self.memory_mib + request.memory_mib)

    def how_many(self, request: Request) -> int:
        """How many containers of `request` fit in it."""
        by_cpu = int((self.cpu + _EPSILON) // request.cpu) if request.cpu > 0 else 1 << 30
        if self.memory_mib is None or request.memory_mib <= 0:
            return max(0, by_cpu)
        return max(0, min(by_cpu, self.memory_mib // request.memory_mib))


def fits_ever(worker: WorkerResources, request: Request) -> bool:
    """Whether the worker could run one such container at all (with nothing else on it)."""
    memory = worker.memory_capacity_mib
    return request.cpu <= worker.cpu_capacity + _EPSILON and (not memory or request.memory_mib <= memory)


def with_room(workers: Iterable[W], request: Request) -> list[W]:
    return [w for w in workers if fits_now(w, request)]


def never_fits(name: str, request: Request, workers: Iterable[WorkerResources]) -> str | None:
    """Why no connected worker could ever run a container of function `name`; None when one could,
    or when no worker is connected (one may join)."""
    workers = list(workers)
    if not workers or any(fits_ever(w, request) for w in workers):
        return None
    largest_cpu = max(w.cpu_capacity for w in workers)
    largest_memory = max(w.memory_capacity_mib for w in workers)
    return (
        f"{name!r} requests {request.describe()} per container, and no worker has that much "
        f"(the largest: {largest_cpu:g} CPUs, {largest_memory} MiB); lower cpu= or memory=, or add a larger worker"
    )


def held_back(request: Request, workers: Iterable[WorkerResources]) -> str:
    """Why a container that would fit some worker starts on none now: for `stoker status`."""
    workers = list(workers)
    cpu = sum(w.cpu_capacity for w in workers)
    reserved_cpu = sum(w.cpu_reserved for w in workers)
    memory = sum(w.memory_capacity_mib for w in workers)
    reserved_memory = sum(w.memory_reserved_mib for w in workers)
    return (
        f"no worker has {request.describe()} free "
        f"({reserved_cpu:g} of {cpu:g} CPUs, {reserved_memory} of {memory} MiB reserved)"
    )
