"""Where a request or a new container goes: pure functions over the scheduler's model."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar


class ContainerView(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def in_flight(self) -> int: ...


class WorkerView(Protocol):
    @property
    def container_count(self) -> int: ...


class PortsView(Protocol):
    @property
    def ports_in_use(self) -> set[int]: ...


C = TypeVar("C", bound=ContainerView)
W = TypeVar("W", bound=WorkerView)
P = TypeVar("P", bound=PortsView)


def pick_container(containers: Iterable[C], max_inputs: int) -> C | None:
    """The warm container with the most free slots; None when every one is full.

    Most-free-slots spreads load across containers, so one container's slowness touches the
    fewest requests; ties go to the first, which keeps placement deterministic.
    """
    best: C | None = None
    for c in containers:
        if c.state == "warm" and c.in_flight < max_inputs and (best is None or c.in_flight < best.in_flight):
            best = c
    return best


def pick_worker(workers: Iterable[W]) -> W | None:
    """The worker running the fewest containers."""
    return min(workers, key=lambda w: w.container_count, default=None)


def port_free(workers: Iterable[P], port: int) -> Iterator[P]:
    """The workers where no container holds `port`, the port a @web_server container listens on
    (0: it needs none). Containers share their worker's network, so two that need one port
    cannot run on one worker: such containers spread across workers, and requests beyond their
    capacity queue."""
    return (w for w in workers if not port or port not in w.ports_in_use)
