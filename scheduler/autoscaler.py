"""The autoscaler's arithmetic, in Modal's terms: pure functions, no I/O.

Demand is the inputs in flight plus those queued. A function wants enough containers to give
each about `target_inputs` of them (`max_inputs` when unset), plus `buffer_containers` idle
ones while it is busy at all, never fewer than `min_containers` nor more than `max_containers`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, TypeVar


class IdleView(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def idle_since(self) -> float: ...


C = TypeVar("C", bound=IdleView)


def desired_containers(
    *,
    in_flight: int,
    queued: int,
    target_inputs: int,
    buffer_containers: int,
    min_containers: int,
    max_containers: int,
) -> int:
    """How many live containers the function should have now. `max_containers` 0: no limit."""
    demand = in_flight + queued
    wanted = math.ceil(demand / max(1, target_inputs))
    if demand > 0:
        wanted += buffer_containers
    wanted = max(wanted, min_containers)
    if max_containers > 0:
        wanted = min(wanted, max_containers)
    return wanted


def containers_to_start(*, desired: int, live: int) -> int:
    """Containers to start now, `live` counting those starting and warm (not draining)."""
    return max(0, desired - live)


def idle_to_stop(containers: Sequence[C], *, now: float, scaledown_window: float, keep: int) -> list[C]:
    """Warm containers idle for at least `scaledown_window`, oldest idle first, beyond the `keep`
    live ones the function still wants. Containers with inputs in flight are never chosen."""
    live = sum(1 for c in containers if c.state != "draining")
    idle = sorted(
        (c for c in containers if c.state == "warm" and c.in_flight == 0 and now - c.idle_since >= scaledown_window),
        key=lambda c: c.idle_since,
    )
    return idle[: max(0, live - keep)]
