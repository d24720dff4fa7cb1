"""The autoscaler's arithmetic (scheduler/autoscaler.py)."""

from __future__ import annotations

from dataclasses import dataclass

from scheduler.autoscaler import containers_to_start, idle_to_stop

NOW = 1000.0
WINDOW = 60.0


def start(
    *,
    queued: int = 0,
    starting_slots: int = 0,
    running: int = 0,
    min_containers: int = 0,
    max_containers: int = 0,
    max_inputs: int = 1,
) -> int:
    return containers_to_start(
        queued=queued,
        starting_slots=starting_slots,
        running=running,
        min_containers=min_containers,
        max_containers=max_containers,
        max_inputs=max_inputs,
    )


@dataclass(frozen=True)
class Box:
    name: str
    state: str = "warm"
    in_flight: int = 0
    idle_since: float = 0.0


def stop(containers: list[Box], *, min_containers: int = 0) -> list[str]:
    chosen = idle_to_stop(containers, now=NOW, scaledown_window=WINDOW, min_containers=min_containers)
    return [c.name for c in chosen]


def test_nothing_starts_when_nothing_waits() -> None:
    assert start() == 0


def test_one_container_starts_per_queued_request() -> None:
    assert start(queued=3) == 3


def test_starting_slots_absorb_queued_requests() -> None:
    assert start(queued=3, starting_slots=2) == 1
    assert start(queued=3, starting_slots=3) == 0
    assert start(queued=3, starting_slots=10) == 0


def test_max_inputs_packs_queued_requests_into_fewer_containers() -> None:
    assert start(queued=5, max_inputs=2) == 3
    assert start(queued=4, max_inputs=4) == 1
    assert start(queued=9, starting_slots=4, max_inputs=4) == 2


def test_min_containers_are_started_without_traffic() -> None:
    assert start(min_containers=2) == 2


def test_min_containers_count_running_containers() -> None:
    assert start(min_containers=3, running=2) == 1
    assert start(min_containers=2, running=5) == 0


def test_queue_and_min_containers_take_the_larger_need() -> None:
    assert start(queued=1, min_containers=3) == 3
    assert start(queued=5, min_containers=1, running=1) == 5


def test_max_containers_caps_new_containers() -> None:
    assert start(queued=10, max_containers=4) == 4
    assert start(queued=10, running=3, max_containers=4) == 1


def test_nothing_starts_at_or_over_max_containers() -> None:
    assert start(queued=10, running=4, max_containers=4) == 0
    assert start(queued=10, running=6, max_containers=4) == 0


def test_max_containers_zero_means_no_limit() -> None:
    assert start(queued=100, running=50, max_containers=0) == 100


def test_max_containers_caps_min_containers_too() -> None:
    assert start(min_containers=5, max_containers=2) == 2


def test_idle_containers_past_the_window_stop() -> None:
    assert stop([Box("a", idle_since=NOW - WINDOW - 1)]) == ["a"]


def test_idle_containers_within_the_window_stay() -> None:
    assert stop([Box("a", idle_since=NOW - WINDOW + 1)]) == []


def test_a_container_with_inputs_in_flight_never_stops() -> None:
    assert stop([Box("a", in_flight=1, idle_since=0.0)]) == []


def test_starting_and_draining_containers_are_never_chosen() -> None:
    containers = [Box("s", state="starting", idle_since=0.0), Box("d", state="draining", idle_since=0.0)]
    assert stop(containers) == []


def test_min_containers_stay_even_when_idle() -> None:
    containers = [Box(n, idle_since=0.0) for n in "abc"]
    assert len(stop(containers, min_containers=1)) == 2
    assert stop(containers, min_containers=3) == []
    assert stop(containers, min_containers=5) == []


def test_the_oldest_idle_containers_stop_first() -> None:
    containers = [Box("new", idle_since=800.0), Box("old", idle_since=100.0), Box("mid", idle_since=500.0)]
    assert stop(containers) == ["old", "mid", "new"]
    assert stop(containers, min_containers=1) == ["old", "mid"]


def test_busy_containers_count_towards_min_containers() -> None:
    containers = [Box("busy", in_flight=2), Box("idle", idle_since=0.0)]
    assert stop(containers, min_containers=1) == ["idle"]
    assert stop(containers, min_containers=2) == []


def test_draining_containers_do_not_count_towards_min_containers() -> None:
    containers = [Box("d", state="draining", idle_since=0.0), Box("idle", idle_since=0.0)]
    assert stop(containers, min_containers=1) == []
