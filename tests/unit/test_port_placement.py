"""The scheduler keeps @web_server containers that need one port on different workers, on a real
Cluster model and SQLite store, without sockets."""

from __future__ import annotations

from pathlib import Path

from protos import stoker_pb2 as pb
from scheduler.apps import Apps
from scheduler.cluster import Cluster
from scheduler.model import IngressSession, WorkerSession
from scheduler.store import Store
from tests.unit.scheduler_harness import minimal_bundle


def _app(name: str, port: int, kind: str = "web_server") -> pb.AppDefinition:
    web = pb.WebEndpoint(kind=kind, port=port, startup_timeout=5) if kind == "web_server" else pb.WebEndpoint(kind=kind)
    spec = pb.FunctionSpec(name="srv", max_inputs=1, web=web)
    return pb.AppDefinition(name=name, entry="app.py", bundle=minimal_bundle(), functions=[spec])


def _cluster(tmp_path: Path, workers: int, one_host: bool = False) -> tuple[Cluster, Apps, list[WorkerSession]]:
    cluster = Cluster(queue_timeout=5)
    apps = Apps(Store(tmp_path / "stoker.db"), cluster, "ws", "localhost", "http", 8000)
    sessions = [
        WorkerSession(info=pb.WorkerRegister(worker_id=f"w{i}", hostname="m" if one_host else f"m{i}"))
        for i in range(workers)
    ]
    for session in sessions:
        cluster.add_worker(session)
    return cluster, apps, sessions


def _started_on(worker: WorkerSession) -> list[str]:
    ids = []
    while not worker.outbox.empty():
        command = worker.outbox.get_nowait()
        if command.WhichOneof("kind") == "start":
            ids.append(command.start.container_id)
    return ids


def _demand(cluster: Cluster, requests: int) -> None:
    ingress = IngressSession(id="in")
    cluster.add_ingress(ingress)
    function_id = next(iter(cluster.functions))
    for slot_id in range(requests):
        cluster.acquire(ingress, slot_id, function_id)


def test_containers_of_one_web_server_spread_one_per_worker(tmp_path: Path) -> None:
    cluster, apps, workers = _cluster(tmp_path, workers=2)
    apps.deploy(_app("one", 8000), "", ephemeral=False)
    _demand(cluster, 3)  # max_inputs=1: three containers wanted, two workers
    assert [len(_started_on(w)) for w in workers] == [1, 1]
    assert all(w.ports_in_use == {8000} for w in workers)
    assert len(next(iter(cluster.functions.values())).queue) == 3  # waiting for the starts


def test_workers_on_one_host_run_one_container_per_port(tmp_path: Path) -> None:
    cluster, apps, workers = _cluster(tmp_path, workers=2, one_host=True)
    apps.deploy(_app("one", 8000), "", ephemeral=False)
    _demand(cluster, 3)
    assert sorted(len(_started_on(w)) for w in workers) == [0, 1]


def test_a_freed_port_takes_the_next_container(tmp_path: Path) -> None:
    cluster, apps, workers = _cluster(tmp_path, workers=1)
    apps.deploy(_app("one", 8000), "", ephemeral=False)
    _demand(cluster, 2)
    [first] = _started_on(workers[0])
    cluster.container_started(first, "127.0.0.1:1")  # takes request 0; request 1 waits: no port free
    assert _started_on(workers[0]) == []
    cluster.container_exited(first, "it died")
    assert len(_started_on(workers[0])) == 1  # its port is free again: the next container takes it
    assert workers[0].ports_in_use == {8000}


def test_other_ports_and_other_kinds_share_a_worker(tmp_path: Path) -> None:
    cluster, apps, workers = _cluster(tmp_path, workers=1)
    apps.deploy(_app("a", 8000), "", ephemeral=False)
    apps.deploy(_app("b", 9000), "", ephemeral=False)
    apps.deploy(_app("c", 0, kind="asgi_app"), "", ephemeral=False)
    ingress = IngressSession(id="in")
    cluster.add_ingress(ingress)
    for slot_id, function_id in enumerate(list(cluster.functions) * 2):
        cluster.acquire(ingress, slot_id, function_id)
    # One container each for the two web servers (their second waits), two for the ASGI app.
    assert len(_started_on(workers[0])) == 4
    assert workers[0].ports_in_use == {8000, 9000}
