"""The scheduler on real clusters: slots, scale-out, queueing, autoscaling, failures, workers, GPUs."""

from __future__ import annotations

import itertools
import json
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import Cluster, alive, host_pid, live_worker_pid, running_cluster, wait_until

FAKE_NVML = Path(__file__).parent / "fake_nvml"


def _concurrently(cluster: Cluster, url: str, path: str, count: int) -> list[httpx.Response]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: cluster.get(url, path), range(count)))


def _overlaps(visits: list[dict[str, float]]) -> bool:
    ordered = sorted(visits, key=lambda v: v["start"])
    return any(later["start"] < earlier["end"] for earlier, later in itertools.pairwise(ordered))


def _function(cluster: Cluster, name: str) -> object:
    return next(f for f in cluster.status().functions if f.function == name)


@pytest.fixture
def started(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A cluster built from the test's `cluster_options` marker: workers=N, env={...}."""
    marker = request.node.get_closest_marker("cluster_options")
    options = marker.kwargs if marker else {}
    with running_cluster(tmp_path, options.get("workers", 1), **options.get("env", {})) as c:
        yield c


def test_max_inputs_one_never_overlaps(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("scaling.py")["single"]
    responses = _concurrently(shared_cluster, url, "/?seconds=0.4", 2)
    visits = [r.json() for r in responses]
    assert {v["pid"] for v in visits} == {visits[0]["pid"]}  # max_containers=1: one container
    assert not _overlaps(visits)


def test_queueing_at_max_containers_serves_all_in_turn(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("scaling.py")["single"]
    responses = _concurrently(shared_cluster, url, "/?seconds=0.2", 5)
    assert [r.status_code for r in responses] == [200] * 5
    visits = [r.json() for r in responses]
    assert len({v["pid"] for v in visits}) == 1
    assert not _overlaps(visits)


def test_concurrent_requests_scale_out(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("scaling.py")["wide"]
    responses = _concurrently(shared_cluster, url, "/?seconds=1", 8)
    visits = [r.json() for r in responses]
    assert [r.status_code for r in responses] == [200] * 8
    # One container per input (max_inputs=1): served side by side, not one after another.
    assert len({v["pid"] for v in visits}) >= 4
    assert _overlaps(visits), "no two of the 8 requests were served at the same time"


def test_min_containers_are_kept_warm_without_traffic(shared_cluster: Cluster) -> None:
    shared_cluster.deploy("scaling.py")
    assert wait_until(lambda: len(shared_cluster.warm_containers("kept")) == 2, timeout=20)


def test_buffer_containers_wait_idle_while_busy(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("scaling.py")["buffered"]
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(shared_cluster.get, url, "/?seconds=3")
        assert wait_until(lambda: len(shared_cluster.warm_containers("buffered")) == 2, timeout=15)
        busy = [c.in_flight for c in shared_cluster.warm_containers("buffered")]
        assert sorted(busy) == [0, 1]
        assert pending.result().status_code == 200


def test_a_crashing_container_gives_502_and_is_replaced(shared_cluster: Cluster) -> None:
    urls = shared_cluster.deploy("scaling.py")
    crashed = shared_cluster.get(urls["crash"])
    assert crashed.status_code == 502
    assert "stopped while handling the request" in crashed.text
    assert shared_cluster.get(urls["crash"], "/?now=false").status_code == 200
    # A min_containers function whose container dies gets a new one by itself.
    assert wait_until(lambda: len(shared_cluster.warm_containers("survivor")) == 1, timeout=20)
    record = shared_cluster.get(urls["survivor"]).json()["pid"]
    (before,) = shared_cluster.warm_containers("survivor")
    os.kill(host_pid(record), signal.SIGKILL)  # the container process, killed from outside

    def replaced() -> bool:
        now = [c.container_id for c in shared_cluster.warm_containers("survivor")]  # type: ignore[attr-defined]
        return len(now) == 1 and before.container_id not in now  # type: ignore[attr-defined]

    assert wait_until(replaced, timeout=20)
    assert shared_cluster.get(urls["survivor"]).json()["pid"] != record


@pytest.mark.cluster_options(env={"STOKER_QUEUE_TIMEOUT": "1"})
def test_a_request_queued_past_its_timeout_gets_503(started: Cluster) -> None:
    url = started.deploy("scaling.py")["single"]
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(started.get, url, "/?seconds=4")
        assert wait_until(lambda: any(c.in_flight for c in started.warm_containers("single")), timeout=15)
        refused = started.get(url, "/?seconds=0")
        assert refused.status_code == 503
        assert "free slot within 1 s" in refused.text
        assert slow.result().status_code == 200


@pytest.mark.cluster_options(workers=2)
def test_two_workers_share_the_load(started: Cluster) -> None:
    url = started.deploy("scaling.py")["wide"]
    responses = _concurrently(started, url, "/?seconds=1", 4)
    assert [r.status_code for r in responses] == [200] * 4
    workers = {c.worker_id for c in started.status().containers if c.function == "wide"}
    assert len(workers) == 2


@pytest.mark.cluster_options(workers=2)
def test_a_killed_worker_has_its_containers_rescheduled(started: Cluster) -> None:
    url = started.deploy("scaling.py")["survivor"]
    assert wait_until(lambda: len(started.warm_containers("survivor")) == 1, timeout=20)
    victim = started.warm_containers("survivor")[0].worker_id  # type: ignore[attr-defined]
    os.kill(live_worker_pid(started, victim), signal.SIGKILL)

    def moved() -> bool:
        hosts = [c.worker_id for c in started.warm_containers("survivor")]  # type: ignore[attr-defined]
        return bool(hosts) and victim not in hosts

    assert wait_until(moved, timeout=20)
    assert started.get(url).status_code == 200
    # `stoker up` restarts the killed worker, which registers again as an empty node.
    assert wait_until(lambda: len(started.status().workers) == 2, timeout=20)


@pytest.mark.cluster_options(env={"STOKER_WORKER_GPUS": "A10G:24"})
def test_a_second_gpu_function_waits_for_the_only_gpu(started: Cluster) -> None:
    urls = started.deploy("gpus.py")
    first = started.get(urls["first"]).json()
    assert first["cuda"] == "0"
    first_pid = host_pid(first["pid"])
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(started.get, urls["second"])
        assert wait_until(lambda: _function(started, "second").queued == 1, timeout=10)  # type: ignore[attr-defined]
        second = waiting.result().json()
    assert second["cuda"] == "0"
    assert not alive(first_pid)  # the GPU came free when first's container stopped


@pytest.mark.cluster_options(env={"STOKER_WORKER_GPUS": "A10G:24"})
def test_a_gpu_request_no_worker_can_meet_fails_fast(started: Cluster) -> None:
    urls = started.deploy("gpus.py")
    refused = started.get(urls["pair"])
    assert refused.status_code == 503
    assert "2 × H100" in refused.text  # noqa: RUF001
    assert "A10G" in refused.text
    # Refused for the GPUs it can never have, not after waiting out the queue for a slot.
    assert "free slot" not in refused.text
    assert not [c for c in started.status().containers if c.function == "pair"]


NVML_DEVICES = [
    {"name": "NVIDIA H100 80GB HBM3", "memory_gib": 80, "utilization": 7},
    {"name": "NVIDIA H100 80GB HBM3", "memory_gib": 80, "utilization": 0},
]


@pytest.mark.cluster_options(env={"PYTHONPATH": str(FAKE_NVML), "STOKER_FAKE_NVML": json.dumps(NVML_DEVICES)})
def test_gpus_read_through_nvml_are_placed(started: Cluster) -> None:
    (worker,) = started.status().workers
    assert [g.name for g in worker.gpus] == ["NVIDIA H100 80GB HBM3"] * 2
    assert worker.gpus[0].utilization == 7
    urls = started.deploy("gpus.py")
    assert started.get(urls["pair"]).json()["cuda"] == "0,1"
    assert sorted(started.status().workers[0].gpus_in_use) == [0, 1]
    text = started.stoker("status").stdout
    assert "2/2 used" in text


@pytest.mark.cluster_options(workers=2, env={"STOKER_HEARTBEAT_TIMEOUT": "2"})
def test_a_silent_worker_is_dropped_and_comes_back_clean(started: Cluster) -> None:
    url = started.deploy("scaling.py")["survivor"]
    assert wait_until(lambda: len(started.warm_containers("survivor")) == 1, timeout=20)
    (old,) = started.warm_containers("survivor")
    frozen = live_worker_pid(started, old.worker_id)  # type: ignore[attr-defined]
    os.kill(frozen, signal.SIGSTOP)  # alive but silent: no heartbeats, stream still open
    try:

        def moved() -> bool:
            hosts = [c.worker_id for c in started.warm_containers("survivor")]  # type: ignore[attr-defined]
            return bool(hosts) and old.worker_id not in hosts  # type: ignore[attr-defined]

        assert wait_until(moved, timeout=20)
        assert started.get(url).status_code == 200
    finally:
        os.kill(frozen, signal.SIGCONT)
    # Woken, it finds its stream ended, registers again and stops what it ran before.
    assert wait_until(lambda: len(started.status().workers) == 2, timeout=20)
    assert wait_until(lambda: old.container_id not in {c.container_id for c in started.status().containers}, 10)  # type: ignore[attr-defined]


def test_a_container_runs_max_inputs_sync_inputs_at_once(shared_cluster: Cluster) -> None:
    # 50 sync one-second inputs, one container allowing 60: all run side by side in threads.
    url = shared_cluster.deploy("scaling.py")["many"]
    visits = [r.json() for r in _concurrently(shared_cluster, url, "/?seconds=1", 50)]
    assert len({v["pid"] for v in visits}) == 1
    latest_start = max(v["start"] for v in visits)
    earliest_end = min(v["end"] for v in visits)
    assert latest_start < earliest_end, "some inputs waited for others: the thread pool capped concurrency"
