"""Where a request or a new container goes (scheduler/placement.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from scheduler.placement import pick_container, pick_worker, port_free


@dataclass(frozen=True)
class Slot:
    name: str
    state: str = "warm"
    in_flight: int = 0


@dataclass(frozen=True)
class Node:
    name: str
    container_count: int = 0
    ports_in_use: set[int] = field(default_factory=set)
    host: str = ""
    own_networks: bool = False

    def __post_init__(self) -> None:
        if not self.host:
            object.__setattr__(self, "host", self.name)


def test_pick_container_takes_the_warm_one_with_most_free_slots() -> None:
    containers = [Slot("a", in_flight=3), Slot("b", in_flight=1), Slot("c", in_flight=2)]
    assert pick_container(containers, max_inputs=4) == containers[1]


def test_pick_container_skips_starting_and_draining_containers() -> None:
    containers = [Slot("a", state="starting"), Slot("b", state="draining"), Slot("c", in_flight=2)]
    assert pick_container(containers, max_inputs=4) == containers[2]


def test_pick_container_returns_none_without_warm_containers() -> None:
    assert pick_container([Slot("a", state="starting"), Slot("b", state="draining")], 1) is None


def test_pick_container_returns_none_with_no_containers() -> None:
    assert pick_container([], max_inputs=1) is None


def test_pick_container_returns_none_when_every_warm_one_is_full() -> None:
    assert pick_container([Slot("a", in_flight=2), Slot("b", in_flight=2)], max_inputs=2) is None


def test_pick_container_respects_max_inputs_of_one() -> None:
    containers = [Slot("a", in_flight=1), Slot("b", in_flight=0)]
    assert pick_container(containers, max_inputs=1) == containers[1]


def test_pick_container_never_picks_a_container_over_max_inputs() -> None:
    # A container can hold more than max_inputs after the limit was lowered by a redeploy.
    assert pick_container([Slot("a", in_flight=5)], max_inputs=2) is None


def test_pick_container_breaks_ties_by_order() -> None:
    containers = [Slot("a", in_flight=1), Slot("b", in_flight=1), Slot("c", in_flight=1)]
    assert pick_container(containers, max_inputs=2) == containers[0]
    assert pick_container(list(reversed(containers)), max_inputs=2) == containers[2]


def test_pick_container_accepts_any_iterable() -> None:
    containers = {"a": Slot("a", in_flight=1), "b": Slot("b")}
    assert pick_container(containers.values(), max_inputs=2) == containers["b"]


def test_pick_worker_takes_the_one_running_fewest_containers() -> None:
    workers = [Node("a", 3), Node("b", 1), Node("c", 2)]
    assert pick_worker(workers) == workers[1]


def test_pick_worker_breaks_ties_by_order() -> None:
    workers = [Node("a", 1), Node("b", 1)]
    assert pick_worker(workers) == workers[0]


def test_pick_worker_returns_none_without_workers() -> None:
    assert pick_worker([]) is None


def test_port_free_skips_workers_where_a_container_holds_the_port() -> None:
    workers = [Node("a", 1, {8000}), Node("b", 2, {9000}), Node("c", 3)]
    assert (port_free(workers, 8000)) == workers[1:]
    assert (port_free(workers, 9000)) == [workers[0], workers[2]]


def test_port_free_keeps_every_worker_for_functions_that_need_no_port() -> None:
    workers = [Node("a", 1, {8000}), Node("b")]
    assert (port_free(workers, 0)) == workers


def test_a_web_server_goes_to_the_least_busy_worker_with_its_port_free() -> None:
    # "a" runs fewest containers but already serves port 8000: the next such container spreads.
    workers = [Node("a", 1, {8000}), Node("b", 4), Node("c", 2)]
    assert pick_worker(port_free(workers, 8000)) == workers[2]
    assert pick_worker(port_free(workers, 0)) == workers[0]


def test_no_worker_for_a_web_server_whose_port_is_taken_everywhere() -> None:
    # The scheduler then starts nothing; requests queue until a container of it frees a slot.
    assert pick_worker(port_free([Node("a", 0, {8000}), Node("b", 0, {8000, 9000})], 8000)) is None


def test_workers_on_one_host_share_its_ports() -> None:
    # `stoker up --workers 2` on one machine: both workers' containers share its network.
    workers = [Node("a", 1, {8000}, host="m1"), Node("b", 0, host="m1"), Node("c", 5, host="m2")]
    assert port_free(workers, 8000) == workers[2:]
    assert port_free(workers, 9000) == workers


def test_a_worker_whose_containers_have_their_own_networks_has_every_port_free() -> None:
    # Two workers of one host: "a"'s container holds 8000 of the host's network; "b"'s containers
    # each listen in a network namespace of their own, so its 8000 is free however many use it.
    workers = [Node("a", 1, {8000}, host="h"), Node("b", 2, host="h", own_networks=True), Node("c", 0, host="h")]
    assert port_free(workers, 8000) == [workers[1]]
