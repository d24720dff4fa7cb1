"""The autoscaler's arithmetic, in Modal's terms: pure functions, no I/O."""

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


def containers_to_start(
    *,
    queued: int,
    starting_slots: int,
    running: int,
    min_containers: int,
    max_containers: int,
    max_inputs: int,
) -> int:
    """How many containers to start now.

    `queued` requests wait for a slot; `starting_slots` is what containers already starting will
    offer; `running` counts every container that is not draining. `max_containers` 0 is no limit.
    """
    for_queue = math.ceil(max(0, queued - starting_slots) / max(1, max_inputs))
    want = max(for_queue, min_containers - running)
    if max_containers > 0:
        want = min(want, max_containers - running)
    return max(0, want)


def idle_to_stop(containers: Sequence[C], *, now: float, scaledown_window: float, min_containers: int) -> list[C]:
    """Warm containers idle for longer than `scaledown_window`, beyond the `min_containers`
    that must stay. Containers with inputs in flight are never chosen."""
    running = sum(1 for c in containers if c.state != "draining")
    idle = sorted(
        (c for c in containers if c.state == "warm" and c.in_flight == 0 and now - c.idle_since >= scaledown_window),
        key=lambda c: c.idle_since,
    )
    return idle[: max(0, running - min_containers)]
