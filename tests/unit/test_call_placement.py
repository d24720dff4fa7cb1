"""Function calls placed by the scheduler itself (Cluster.acquire_slot) and found by name
(Calls.find), on the real Cluster and Apps over a real SQLite file, without sockets."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest

from protos import stoker_pb2 as pb
from scheduler import call_credentials
from scheduler.apps import AppError, Apps
from scheduler.calls import Calls
from scheduler.cluster import Cluster
from scheduler.model import SlotRefused, WorkerSession
from scheduler.store import Store
from tests.unit.scheduler_harness import minimal_bundle

CALL_KEY = call_credentials.derive_key("cs-test")


def _app(name: str, max_containers: int = 0, max_inputs: int = 0) -> pb.AppDefinition:
    return pb.AppDefinition(
        name=name,
        entry="app.py",
        bundle=minimal_bundle(),
        functions=[
            pb.FunctionSpec(name="work", max_containers=max_containers, max_inputs=max_inputs),
            pb.FunctionSpec(name="page", web=pb.WebEndpoint(kind="fastapi_endpoint", method="GET")),
        ],
    )


def _setup(tmp_path: Path, max_containers: int = 0, max_inputs: int = 0) -> tuple[Apps, Cluster, WorkerSession]:
    cluster = Cluster(queue_timeout=5, call_key=CALL_KEY)
    worker = WorkerSession(info=pb.WorkerRegister(worker_id="w1", hostname="h"))
    cluster.add_worker(worker)
    apps = Apps(Store(tmp_path / "stoker.db"), cluster, "ws", "localhost", "http", 8000)
    apps.deploy(_app("jobs", max_containers, max_inputs), "", ephemeral=False)
    return apps, cluster, worker


def _started(worker: WorkerSession) -> list[pb.StartContainer]:
    commands = []
    while not worker.outbox.empty():
        command = worker.outbox.get_nowait()
        if command.WhichOneof("kind") == "start":
            commands.append(command.start)
    return commands


def test_a_call_starts_a_container_for_a_function_without_traffic(tmp_path: Path) -> None:
    asyncio.run(_a_call_starts_a_container_for_a_function_without_traffic(tmp_path))


async def _a_call_starts_a_container_for_a_function_without_traffic(tmp_path: Path) -> None:
    apps, cluster, worker = _setup(tmp_path)
    fn = Calls(apps, cluster).find("jobs", "", "work")
    assert _started(worker) == []  # no web endpoint, no traffic: nothing runs yet
    slot = asyncio.ensure_future(cluster.acquire_slot(fn))
    await asyncio.sleep(0)
    [start] = _started(worker)
    # The container may call functions: a call-only credential for its app, never a token.
    assert call_credentials.verify(CALL_KEY, start.env["STOKER_TOKEN"]) == fn.app.app_id
    cluster.container_started(start.container_id, "127.0.0.1:1")
    container = await asyncio.wait_for(slot, 1)
    assert container.id == start.container_id and container.in_flight == 1
    cluster.release_slot(container)
    assert container.in_flight == 0


def test_a_call_queued_at_max_containers_is_refused_after_the_queue_timeout(tmp_path: Path) -> None:
    asyncio.run(_a_call_queued_at_max_containers_is_refused_after_the_queue_timeout(tmp_path))


async def _a_call_queued_at_max_containers_is_refused_after_the_queue_timeout(tmp_path: Path) -> None:
    apps, cluster, worker = _setup(tmp_path, max_containers=1)
    fn = Calls(apps, cluster).find("jobs", "", "work")
    first = asyncio.ensure_future(cluster.acquire_slot(fn))
    await asyncio.sleep(0)
    [start] = _started(worker)
    cluster.container_started(start.container_id, "127.0.0.1:1")
    await asyncio.wait_for(first, 1)
    second = asyncio.ensure_future(cluster.acquire_slot(fn))
    await asyncio.sleep(0)
    assert len(fn.queue) == 1 and _started(worker) == []  # at max_containers: it waits
    cluster.tick(time.monotonic() + 6)
    with pytest.raises(SlotRefused) as refused:
        await asyncio.wait_for(second, 1)
    assert refused.value.reason == pb.REFUSAL_QUEUE_TIMEOUT and "free slot" in refused.value.message


def test_a_caller_leaving_the_queue_is_forgotten(tmp_path: Path) -> None:
    asyncio.run(_a_caller_leaving_the_queue_is_forgotten(tmp_path))


async def _a_caller_leaving_the_queue_is_forgotten(tmp_path: Path) -> None:
    apps, cluster, _ = _setup(tmp_path)
    fn = Calls(apps, cluster).find("jobs", "", "work")
    waiting = asyncio.ensure_future(cluster.acquire_slot(fn))
    await asyncio.sleep(0)
    assert len(fn.queue) == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert len(fn.queue) == 0


def test_find_prefers_the_callers_own_app_and_names_what_is_missing(tmp_path: Path) -> None:
    apps, cluster, _ = _setup(tmp_path)
    served = apps.deploy(_app("jobs"), "", ephemeral=True, app_id="ap-served")
    calls = Calls(apps, cluster)
    assert calls.find("jobs", "", "work").app.app_id != served.app_id  # programs reach the deployed one
    assert calls.find("jobs", "", "work", caller_app_id="ap-served").app.app_id == served.app_id
    with pytest.raises(AppError) as missing:
        calls.find("jobs", "", "nope")
    assert missing.value.code == grpc.StatusCode.NOT_FOUND
    assert "has no function named 'nope' (it has: page, work)" in missing.value.message
    with pytest.raises(AppError, match="no deployed app named 'other'"):
        calls.find("other", "", "work")
