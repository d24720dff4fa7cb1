"""Memory snapshots without processes: which key the scheduler gives a container and which keys
it tells workers are live; which template a worker makes for a container, and its environment."""

from __future__ import annotations

from pathlib import Path

from protos import container_env as cenv
from protos import stoker_pb2 as pb
from scheduler.apps import Apps
from scheduler.cluster import Cluster
from scheduler.model import WorkerSession
from scheduler.store import Store
from tests.unit.scheduler_harness import minimal_bundle
from worker.snapshots import snapshot_identity, template_environment


def _definition(snapshot: bool = True) -> pb.AppDefinition:
    return pb.AppDefinition(
        name="snaps",
        entry="app.py",
        bundle=minimal_bundle(),
        functions=[
            pb.FunctionSpec(
                name="Model",
                methods=[pb.MethodSpec(name="predict")],
                parameters=[pb.ParameterSpec(name="size", type="str")],
                enable_memory_snapshot=snapshot,
                min_containers=1,
            ),
            pb.FunctionSpec(name="plain", min_containers=1),
        ],
    )


def _commands(worker: WorkerSession) -> list[pb.WorkerCommand]:
    sent = []
    while not worker.outbox.empty():
        sent.append(worker.outbox.get_nowait())
    return sent


def _live(commands: list[pb.WorkerCommand]) -> list[list[str]]:
    return [list(c.live_snapshots.keys) for c in commands if c.HasField("live_snapshots")]


def _starts(commands: list[pb.WorkerCommand]) -> dict[str, pb.StartContainer]:
    return {c.start.function.name: c.start for c in commands if c.HasField("start")}


def test_containers_carry_their_versions_key_and_workers_learn_which_are_live(tmp_path: Path) -> None:
    cluster = Cluster(queue_timeout=5)
    worker = WorkerSession(info=pb.WorkerRegister(worker_id="w1", hostname="h"))
    cluster.add_worker(worker)
    assert _live(_commands(worker)) == [[]]  # the first thing a worker hears
    apps = Apps(Store(tmp_path / "stoker.db"), cluster, "ws", "localhost", "http", 8000)
    app_id = apps.deploy(_definition(), "", ephemeral=False).app_id

    starts = _starts(_commands(worker))
    assert starts["Model"].snapshot_key == f"{app_id}:1:Model"
    assert starts["plain"].snapshot_key == ""
    # A parameter pool's containers carry the class's key (the worker tells them apart by parameters).
    model = next(fn for fn in cluster.functions.values() if fn.spec.name == "Model")
    cluster.pool(model, b"large")
    cluster.scale_all()
    (pool_start,) = [c.start for c in _commands(worker) if c.HasField("start")]
    assert pool_start.env[cenv.PARAMETERS] == b"large".hex()
    assert pool_start.snapshot_key == f"{app_id}:1:Model"

    apps.deploy(_definition(), "", ephemeral=False)  # version 2 replaces version 1
    sent = _commands(worker)
    assert _starts(sent)["Model"].snapshot_key == f"{app_id}:2:Model"
    assert _live(sent) == [[f"{app_id}:2:Model"]]
    # A worker that registers now hears the live keys before any start.
    late = WorkerSession(info=pb.WorkerRegister(worker_id="w2", hostname="h2"))
    cluster.add_worker(late)
    assert _live(_commands(late)[:1]) == [[f"{app_id}:2:Model"]]

    apps.stop("snaps", "")
    assert _live(_commands(worker)) == [[]]


def test_a_redeploy_without_snapshots_still_drops_the_old_ones(tmp_path: Path) -> None:
    cluster = Cluster(queue_timeout=5)
    worker = WorkerSession(info=pb.WorkerRegister(worker_id="w1", hostname="h"))
    cluster.add_worker(worker)
    apps = Apps(Store(tmp_path / "stoker.db"), cluster, "ws", "localhost", "http", 8000)
    apps.deploy(_definition(), "", ephemeral=False)
    _commands(worker)
    apps.deploy(_definition(snapshot=False), "", ephemeral=False)
    sent = _commands(worker)
    assert _live(sent) == [[]]
    assert all(start.snapshot_key == "" for start in _starts(sent).values())


def _start(container_id: str, parameters: str = "", secret: str = "s3cret") -> pb.StartContainer:
    return pb.StartContainer(
        container_id=container_id,
        app_id="ap-1",
        app_name="snaps",
        bundle_hash="b" * 64,
        entry="app.py",
        function=pb.FunctionSpec(name="Model", enable_memory_snapshot=True),
        env={
            "API_KEY": secret,
            cenv.TOKEN: f"token-of-{container_id}",
            **({cenv.PARAMETERS: parameters} if parameters else {}),
        },
        gpu_indices=[int(container_id[-1])],
        snapshot_key="ap-1:1:Model",
    )


def test_containers_of_one_pool_share_a_template_and_other_pools_do_not() -> None:
    assert snapshot_identity(_start("ct-1")) == snapshot_identity(_start("ct-2"))
    assert snapshot_identity(_start("ct-1")) != snapshot_identity(_start("ct-1", parameters="0a05"))
    assert snapshot_identity(_start("ct-1")) != snapshot_identity(_start("ct-1", secret="rotated"))
    other_version = _start("ct-1")
    other_version.snapshot_key = "ap-1:2:Model"
    assert snapshot_identity(other_version) != snapshot_identity(_start("ct-1"))


def test_the_template_gets_a_containers_environment_less_what_is_each_containers_own() -> None:
    container = {
        "API_KEY": "s3cret",
        "PATH": "/usr/bin",
        cenv.TOKEN: "credential",
        cenv.SCHEDULER: "127.0.0.1:7700",
        cenv.CONTAINER_ID: "ct-1",
        cenv.ENTRY: "/bundle/app.py",
        "CUDA_VISIBLE_DEVICES": "0,1",
        "OMP_NUM_THREADS": "8",
    }
    env = template_environment(container)
    assert env == {
        "API_KEY": "s3cret",
        "PATH": "/usr/bin",
        cenv.ENTRY: "/bundle/app.py",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
    }
