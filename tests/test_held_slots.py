"""Slots the ingress holds between requests (ingress/held_slots.py), on real clusters: reused
without the scheduler, given back when idle, recalled when something else has to wait, and never
in the way of a container that drains."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Cluster, running_cluster, split_url, start_extra_ingress, stop_process, wait_until

LONG_LINGER = "30"  # seconds: far past every wait below, so only a recall can free a held slot


def in_flight(cluster: Cluster, function: str) -> list[int]:
    """The scheduler's count of busy slots per container of `function` (held ones included)."""
    return [c.in_flight for c in cluster.warm_containers(function)]


@pytest.fixture(scope="module")
def holding(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("held"), STOKER_INGRESS_SLOT_LINGER=LONG_LINGER) as c:
        yield c


def test_sequential_requests_reuse_one_held_slot(holding: Cluster) -> None:
    url = holding.deploy("held_slots.py")["pair"]
    for _ in range(10):
        assert holding.get(url).json() == {"slept": 0.0}
    # Ten requests, one after another: the scheduler placed one slot, and the ingress holds it.
    assert in_flight(holding, "pair") == [1]


def test_a_request_that_ends_late_leaves_the_next_ones_slot_alone(holding: Cluster) -> None:
    url = holding.deploy("held_slots.py")["pair"]
    # Answered at once; the app runs on for another second before the request is over.
    assert holding.get(url, params={"after": 1}).status_code == 200
    second = threading.Thread(target=lambda: holding.get(url, params={"seconds": 4}))  # takes the held slot
    second.start()
    time.sleep(2)  # the first request is over by now; the second is still running
    third = threading.Thread(target=lambda: holding.get(url, params={"seconds": 4}))
    third.start()
    # Two requests at work hold two slots: the first one's end did not hand the second's away.
    assert wait_until(lambda: in_flight(holding, "pair") == [2], 3)
    second.join()
    third.join()


def test_a_function_with_one_input_per_container_is_held_too(holding: Cluster) -> None:
    url = holding.deploy("held_slots.py")["single"]
    for _ in range(5):
        assert holding.get(url).text == '"one at a time"'
    # The seed's defaults: one input at a time, and the ingress holds its container's one slot
    # between requests (the scheduler placed the first request only).
    assert in_flight(holding, "single") == [1]


def test_a_held_single_slot_is_recalled_when_another_ingress_asks(tmp_path: Path) -> None:
    with running_cluster(tmp_path, STOKER_INGRESS_SLOT_LINGER=LONG_LINGER) as cluster:
        url = cluster.deploy("held_slots.py")["single"]
        assert cluster.get(url).status_code == 200
        assert in_flight(cluster, "single") == [1]  # held idle by the first ingress
        process, port = start_extra_ingress(cluster, tmp_path)
        try:
            _, host = split_url(url)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"host": host}, timeout=60) as second:
                # max_containers=1: the second ingress's request waits for the held slot, which
                # only a recall frees within the wait (the linger would take 30 s).
                assert wait_until(lambda: second.get("/").status_code == 200, 20)
                assert len(cluster.warm_containers("single")) == 1
        finally:
            assert stop_process(process, signal.SIGTERM) == 0


def test_a_held_slot_is_recalled_when_another_ingress_must_wait(tmp_path: Path) -> None:
    # A cluster of its own: URLs printed after a second ingress joins carry that ingress's port.
    with running_cluster(tmp_path, STOKER_INGRESS_SLOT_LINGER=LONG_LINGER) as cluster:
        url = cluster.deploy("held_slots.py")["pair"]
        assert cluster.get(url).status_code == 200
        assert in_flight(cluster, "pair") == [1]  # held idle by the first ingress
        process, port = start_extra_ingress(cluster, tmp_path)  # with the same long linger
        try:
            _, host = split_url(url)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"host": host}, timeout=60) as second:
                assert wait_until(lambda: second.get("/").status_code == 200, 30)  # it has the route
                # Its slow request takes the container's other slot; its next one finds none free,
                # and waits until the first ingress gives back the slot it holds idle.
                slow_done = threading.Event()

                def slow() -> None:
                    assert second.get("/", params={"seconds": 8}).status_code == 200
                    slow_done.set()

                thread = threading.Thread(target=slow)
                thread.start()
                assert wait_until(lambda: in_flight(cluster, "pair") == [2], 10)
                assert second.get("/").json() == {"slept": 0.0}
                assert not slow_done.is_set()  # served by the recalled slot, not the slow request's
                thread.join()
        finally:
            assert stop_process(process, signal.SIGTERM) == 0


def test_a_held_slot_does_not_keep_a_replaced_container_alive(holding: Cluster) -> None:
    url = holding.deploy("held_slots.py")["pair"]
    assert holding.get(url).status_code == 200
    old = {c.container_id for c in holding.status().containers if c.function == "pair"}
    holding.deploy("held_slots.py")  # a new version: the old container drains
    assert holding.get(url).status_code == 200
    live = lambda: {c.container_id for c in holding.status().containers if c.function == "pair"}  # noqa: E731
    assert wait_until(lambda: not (old & live()), 20)


def test_an_idle_held_slot_goes_back_after_the_linger(tmp_path: Path) -> None:
    with running_cluster(tmp_path, STOKER_INGRESS_SLOT_LINGER="0.2") as c:
        url = c.deploy("held_slots.py")["pair"]
        assert c.get(url).status_code == 200
        assert wait_until(lambda: in_flight(c, "pair") == [0], 10)
