"""Where a request or a new container goes: pure functions over the scheduler's model."""

from __future__ import annotations

from collections.abc import Collection, Iterable
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
    def host(self) -> str: ...
    @property
    def ports_in_use(self) -> set[int]: ...
    @property
    def own_networks(self) -> bool: ...


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


def port_free(workers: Collection[P], port: int) -> Collection[P]:
    """The workers whose host has `port` free: the port a @web_server container listens on (0: it
    needs none). Containers share their host's network (workers on one host, as with `stoker up
    --workers N`, share it too), so two that need one port cannot run on one host: such containers
    spread across hosts, and requests beyond their capacity queue. A worker whose containers each
    have a network namespace of their own (`own_networks`) has every port free, always."""
    if not port:
        return workers  # the common case: no copy per container start
    taken = {w.host for w in workers if port in w.ports_in_use}
    return [w for w in workers if w.own_networks or w.host not in taken]
