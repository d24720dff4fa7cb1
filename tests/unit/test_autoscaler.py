"""The autoscaler's arithmetic: demand, target_inputs, buffer, min and max containers, idle stops."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from scheduler.autoscaler import containers_to_start, desired_containers, idle_to_stop


def desired(**overrides: int) -> int:
    args = dict(in_flight=0, queued=0, target_inputs=1, buffer_containers=0, min_containers=0, max_containers=0)
    args.update(overrides)
    return desired_containers(**args)


def test_no_demand_wants_no_containers() -> None:
    assert desired() == 0


def test_each_input_wants_a_container_at_one_input_each() -> None:
    assert desired(in_flight=3, queued=5) == 8


def test_target_inputs_packs_inputs_into_containers() -> None:
    assert desired(queued=250, target_inputs=100) == 3
    assert desired(in_flight=100, target_inputs=100) == 1


def test_min_containers_are_kept_without_demand() -> None:
    assert desired(min_containers=2) == 2
    assert desired(queued=1, min_containers=2) == 2


def test_buffer_containers_are_added_only_while_busy() -> None:
    assert desired(buffer_containers=2) == 0
    assert desired(in_flight=1, buffer_containers=2) == 3


def test_max_containers_caps_everything() -> None:
    assert desired(queued=50, max_containers=4) == 4
    assert desired(in_flight=1, buffer_containers=5, max_containers=3) == 3
    assert desired(min_containers=5, max_containers=2) == 2


@pytest.mark.parametrize(("wanted", "live", "start"), [(3, 1, 2), (1, 1, 0), (0, 2, 0)])
def test_containers_to_start_fills_the_gap_only(wanted: int, live: int, start: int) -> None:
    assert containers_to_start(desired=wanted, live=live) == start


@dataclass
class C:
    name: str
    state: str = "warm"
    in_flight: int = 0
    idle_since: float = 0.0


def test_idle_containers_stop_after_the_window_oldest_first() -> None:
    cs = [C("new", idle_since=90.0), C("old", idle_since=10.0), C("mid", idle_since=50.0)]
    stopped = idle_to_stop(cs, now=200.0, scaledown_window=60.0, keep=1)
    assert [c.name for c in stopped] == ["old", "mid"]


def test_a_container_inside_its_window_stays() -> None:
    assert idle_to_stop([C("a", idle_since=150.0)], now=200.0, scaledown_window=60.0, keep=0) == []


def test_busy_containers_never_stop() -> None:
    busy = C("busy", in_flight=1, idle_since=0.0)
    assert idle_to_stop([busy], now=1e6, scaledown_window=1.0, keep=0) == []


def test_keep_protects_wanted_containers() -> None:
    cs = [C("a"), C("b")]
    assert idle_to_stop(cs, now=1e6, scaledown_window=1.0, keep=2) == []
    assert len(idle_to_stop(cs, now=1e6, scaledown_window=1.0, keep=1)) == 1


def test_starting_and_draining_containers_are_not_chosen() -> None:
    cs = [C("s", state="starting"), C("d", state="draining"), C("w")]
    assert [c.name for c in idle_to_stop(cs, now=1e6, scaledown_window=1.0, keep=0)] == ["w"]


def test_draining_containers_do_not_count_as_live() -> None:
    cs = [C("d", state="draining"), C("w")]
    assert idle_to_stop(cs, now=1e6, scaledown_window=1.0, keep=1) == []
