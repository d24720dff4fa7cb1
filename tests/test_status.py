"""`stoker status`: workers, GPUs, functions and containers as the scheduler sees them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format

from client.cli.status import format_status
from protos import stoker_pb2 as pb
from tests.conftest import Cluster, running_cluster, wait_until


def _status(cluster: Cluster) -> pb.StatusResponse:
    return cluster.status()


def _status_json(cluster: Cluster) -> pb.StatusResponse:
    result = cluster.stoker("status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json_format.Parse(result.stdout, pb.StatusResponse())


def _status_text(cluster: Cluster) -> str:
    result = cluster.stoker("status")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _row(text: str, first_cell: str) -> list[str]:
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row for {first_cell!r} in:\n{text}")


def test_an_empty_cluster_has_one_worker_and_no_containers(shared_cluster: Cluster) -> None:
    text = _status_text(shared_cluster)
    status = _status_json(shared_cluster)

    assert len(status.workers) == 1 and not status.containers and not status.functions
    assert status.ingresses == 1
    worker = status.workers[0]
    assert worker.containers == 0 and not worker.gpus and worker.last_heartbeat_age < 60
    assert worker.cpu_count >= 1 and worker.cpu_reserved == 0 and worker.memory_bytes > 0
    row = _row(text, worker.worker_id)
    # containers, CPU reserved of the worker's cores, memory reserved of its GiB, GPUs
    assert row[2:5] == ["0", f"0/{worker.cpu_count}", f"0.0/{worker.memory_bytes / 2**30:.1f}"]
    assert row[6] == "none"
    assert "No containers are running." in text


def test_containers_show_warm_then_in_flight(shared_cluster: Cluster, tmp_path: Path) -> None:
    url = shared_cluster.deploy("status_app.py")["hold"]
    assert shared_cluster.get(url).status_code == 200

    status = _status_json(shared_cluster)
    [container] = status.containers
    assert (container.app_name, container.function, container.state) == ("status-app", "hold", "warm")
    assert (container.in_flight, container.max_inputs) == (0, 2)
    assert container.worker_id == status.workers[0].worker_id
    assert status.workers[0].containers == 1
    [function] = status.functions
    assert (function.app_name, function.function, function.containers, function.queued) == ("status-app", "hold", 1, 0)
    text = _status_text(shared_cluster)
    assert _row(text, container.container_id)[1:5] == ["status-app.hold", container.worker_id, "warm", "0/2"]

    release = tmp_path / "release"
    responses: list[httpx.Response] = []
    held = threading.Thread(target=lambda: responses.append(shared_cluster.get(url, params={"until": str(release)})))
    held.start()
    try:
        assert wait_until(lambda: _status(shared_cluster).containers[0].in_flight == 1, timeout=10)
        assert _row(_status_text(shared_cluster), container.container_id)[4] == "1/2"
        assert _status_json(shared_cluster).containers[0].in_flight == 1
    finally:
        release.touch()
        held.join(30)
    assert [r.status_code for r in responses] == [200]
    assert wait_until(lambda: _status(shared_cluster).containers[0].in_flight == 0, timeout=10)


@pytest.fixture
def gpu_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster whose worker declares two GPUs through STOKER_WORKER_GPUS."""
    with running_cluster(tmp_path, STOKER_WORKER_GPUS="A10G:24,H100:80") as c:
        yield c


def test_declared_gpus_are_listed(gpu_cluster: Cluster) -> None:
    status = _status_json(gpu_cluster)
    [worker] = status.workers
    assert [(g.index, g.name, g.memory_bytes) for g in worker.gpus] == [
        (0, "A10G", 24 * 1024**3),
        (1, "H100", 80 * 1024**3),
    ]
    assert not worker.gpus_in_use
    assert "0/2 used: A10G, H100" in _status_text(gpu_cluster)


def test_format_shows_gpus_in_use_queues_and_draining_containers() -> None:
    status = pb.StatusResponse(
        workers=[
            pb.WorkerInfo(
                worker_id="w1",
                hostname="box",
                gpus=[pb.Gpu(index=0, name="A10G"), pb.Gpu(index=1, name="H100")],
                containers=2,
                gpus_in_use=[1],
                last_heartbeat_age=1.25,
                cpu_count=2,
                memory_bytes=16 * 2**30,
                cpu_reserved=1.25,
                memory_reserved_mib=2048,
            )
        ],
        ingresses=1,
        functions=[
            pb.FunctionInfo(
                app_name="llm",
                function="generate",
                version=3,
                queued=4,
                containers=2,
                gpu="H100",
                scaling="no worker has 1 CPU and 128 MiB free (1.25 of 2 CPUs, 2048 of 16384 MiB reserved)",
            )
        ],
        containers=[
            pb.ContainerInfo(
                container_id="ct-a",
                app_name="llm",
                function="generate",
                worker_id="w1",
                state="warm",
                in_flight=1,
                gpu_indices=[1],
                max_inputs=1,
            ),
            pb.ContainerInfo(
                container_id="ct-b", app_name="llm", function="generate", worker_id="w1", state="draining", max_inputs=1
            ),
        ],
    )
    text = format_status(status)

    assert _row(text, "w1") == [
        "w1",
        "box",
        "2",
        "1.25/2",
        "2.0/16.0",
        "GiB",
        "1/2",
        "used:",
        "A10G,",
        "H100",
        "1.2s",
        "ago",
    ]
    assert _row(text, "llm") == ["llm", "generate", "3", "2", "4", "H100"]
    assert "llm.generate: 4 queued, no container started: no worker has 1 CPU and 128 MiB free" in text
    assert _row(text, "ct-a") == ["ct-a", "llm.generate", "w1", "warm", "1/1", "1:H100"]
    assert _row(text, "ct-b") == ["ct-b", "llm.generate", "w1", "draining", "0/1", "-"]


def test_format_says_when_nothing_is_there() -> None:
    text = format_status(pb.StatusResponse())
    assert "No workers are registered." in text
    assert "No ingress is connected" in text
    assert "No containers are running." in text
