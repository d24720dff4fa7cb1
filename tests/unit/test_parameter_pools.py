"""A class's parameter pools: made on a call's first use, scaled like a function, forgotten once
they hold no container and no waiting call (so callers cannot grow the scheduler's state)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from protos import stoker_pb2 as pb
from scheduler.apps import Apps
from scheduler.cluster import Cluster
from scheduler.model import FunctionState, WorkerSession
from scheduler.store import Store
from tests.unit.scheduler_harness import minimal_bundle


def _deployed(tmp_path: Path, min_containers: int = 0) -> tuple[Cluster, WorkerSession]:
    cluster = Cluster(queue_timeout=30)
    worker = WorkerSession(info=pb.WorkerRegister(worker_id="w1", hostname="h"))
    cluster.add_worker(worker)
    apps = Apps(Store(tmp_path / "stoker.db"), cluster, "ws", "localhost", "http", 8000)
    model = pb.FunctionSpec(
        name="Model",
        methods=[pb.MethodSpec(name="predict")],
        parameters=[pb.ParameterSpec(name="size", type="str")],
        min_containers=min_containers,
    )
    apps.deploy(pb.AppDefinition(name="pools", entry="app.py", bundle=minimal_bundle(), functions=[model]), "", False)
    return cluster, worker


def _class(cluster: Cluster) -> FunctionState:
    return next(fn for fn in cluster.functions.values() if not fn.parameters)


def test_an_unused_pool_is_forgotten_and_a_busy_one_kept(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster, _ = _deployed(tmp_path)
        model = _class(cluster)
        idle = cluster.pool(model, b"idle")
        busy = cluster.pool(model, b"busy")
        waiting = asyncio.ensure_future(cluster.acquire_slot(busy))
        await asyncio.sleep(0)  # the call waits in busy's queue while its container starts
        assert busy.queue and busy.containers
        cluster.tick(time.monotonic())
        assert idle.id not in cluster.functions and (b"idle", b"") not in model.pools
        assert cluster.functions[busy.id] is busy and model.pools[(b"busy", b"")] is busy
        assert cluster.pool(model, b"idle") is not idle  # made anew on use
        waiting.cancel()

    asyncio.run(scenario())


def test_pools_of_a_class_with_min_containers_are_kept(tmp_path: Path) -> None:
    async def scenario() -> None:
        cluster, _ = _deployed(tmp_path, min_containers=1)
        model = _class(cluster)
        pool = cluster.pool(model, b"large")
        cluster.tick(time.monotonic())
        assert cluster.functions[pool.id] is pool

    asyncio.run(scenario())
