"""CPU and memory as placement resources (scheduler/resources.py), on a real Cluster model and
SQLite store, without sockets: a worker takes containers while their requests fit its cores and
memory, a burst queues for slots beyond that, the status says why, a request no worker could fit
is refused, and idle containers of other functions make room for waiting requests."""

from __future__ import annotations

from pathlib import Path

from protos import stoker_pb2 as pb
from scheduler.apps import Apps
from scheduler.cluster import Cluster
from scheduler.model import FunctionState, IngressSession, WorkerSession
from scheduler.resources import DEFAULT_CPU, DEFAULT_MEMORY_MIB
from scheduler.store import Store
from tests.unit.scheduler_harness import events, minimal_bundle

GIB = 2**30


def _app(name: str, **spec: object) -> pb.AppDefinition:
    web = pb.WebEndpoint(kind="fastapi_endpoint", method="GET")
    function = pb.FunctionSpec(name="f", web=web, max_inputs=1, **spec)  # type: ignore[arg-type]
    return pb.AppDefinition(name=name, entry="app.py", bundle=minimal_bundle(), functions=[function])


def _cluster(tmp_path: Path, cpus: int = 2, memory_gib: int = 16) -> tuple[Cluster, Apps, WorkerSession]:
    cluster = Cluster(queue_timeout=5)
    apps = Apps(Store(tmp_path / "stoker.db"), cluster, "ws", "localhost", "http", 8000)
    worker = WorkerSession(
        info=pb.WorkerRegister(worker_id="w1", hostname="m", cpu_count=cpus, memory_bytes=memory_gib * GIB)
    )
    cluster.add_worker(worker)
    return cluster, apps, worker


def _function(cluster: Cluster, app: str) -> FunctionState:
    return next(fn for fn in cluster.functions.values() if fn.app.name == app)


def _demand(cluster: Cluster, fn: FunctionState, requests: int, first_slot: int = 0) -> IngressSession:
    ingress = IngressSession(id=f"in-{first_slot}")
    cluster.add_ingress(ingress)
    for slot_id in range(first_slot, first_slot + requests):
        cluster.acquire(ingress, slot_id, fn.id)
    return ingress


def _started(worker: WorkerSession) -> list[str]:
    ids = []
    while not worker.outbox.empty():
        command = worker.outbox.get_nowait()
        if command.WhichOneof("kind") == "start":
            ids.append(command.start.container_id)
    return ids


def test_a_burst_gets_only_the_containers_the_workers_cores_hold_and_the_rest_queue(tmp_path: Path) -> None:
    cluster, apps, worker = _cluster(tmp_path, cpus=2)
    apps.deploy(_app("quick"), "", ephemeral=False)
    fn = _function(cluster, "quick")
    _demand(cluster, fn, 64)
    assert len(_started(worker)) == int(2 / DEFAULT_CPU) == 16  # Modal's 0.125 of a core each
    assert worker.cpu_reserved == 2.0 and worker.memory_reserved_mib == 16 * DEFAULT_MEMORY_MIB
    assert len(fn.queue) == 64
    assert fn.scaling.startswith(f"no worker has {DEFAULT_CPU:g} CPU and {DEFAULT_MEMORY_MIB} MiB free (2 of 2 CPUs")


def test_memory_requests_limit_a_worker_too_and_an_exit_frees_what_it_reserved(tmp_path: Path) -> None:
    cluster, apps, worker = _cluster(tmp_path, cpus=64, memory_gib=4)
    apps.deploy(_app("big", memory_mib=1536), "", ephemeral=False)
    fn = _function(cluster, "big")
    _demand(cluster, fn, 5)
    first = _started(worker)
    assert len(first) == 2  # 2 x 1.5 GiB fit in 4 GiB, a third does not
    for container_id in first:
        cluster.container_started(container_id, "10.0.0.1:1")
    cluster.container_exited(first[0], "")
    assert len(_started(worker)) == 1  # its memory went to a waiting request's container at once
    assert worker.memory_reserved_mib == 3072 and len(fn.containers) == 2


def test_the_scaling_note_says_why_no_container_starts(tmp_path: Path) -> None:
    cluster, apps, worker = _cluster(tmp_path, cpus=1)
    apps.deploy(_app("quick", cpu=0.5), "", ephemeral=False)
    fn = _function(cluster, "quick")
    _demand(cluster, fn, 3)
    assert len(_started(worker)) == 2
    assert fn.scaling == "no worker has 0.5 CPU and 128 MiB free (1 of 1 CPUs, 256 of 16384 MiB reserved)"


def test_max_containers_is_named_as_the_reason_when_it_holds_scaling_back(tmp_path: Path) -> None:
    cluster, apps, worker = _cluster(tmp_path, cpus=8)
    apps.deploy(_app("capped", max_containers=2), "", ephemeral=False)
    fn = _function(cluster, "capped")
    _demand(cluster, fn, 4)
    assert len(_started(worker)) == 2
    assert fn.scaling == "at max_containers=2"


def test_a_request_no_worker_could_ever_fit_is_refused_saying_so(tmp_path: Path) -> None:
    cluster, apps, worker = _cluster(tmp_path, cpus=2)
    apps.deploy(_app("huge", cpu=8.0), "", ephemeral=False)
    fn = _function(cluster, "huge")
    ingress = _demand(cluster, fn, 1)
    assert _started(worker) == []
    (rejection,) = [e.rejection for e in events(ingress) if e.WhichOneof("kind") == "rejection"]
    assert rejection.reason == pb.REFUSAL_NO_CAPACITY
    assert "requests 8 CPU and 128 MiB per container, and no worker has that much" in rejection.message
    assert "(the largest: 2 CPUs, 16384 MiB)" in rejection.message


def test_idle_containers_of_another_function_make_room_for_waiting_requests(tmp_path: Path) -> None:
    cluster, apps, worker = _cluster(tmp_path, cpus=1)
    apps.deploy(_app("first"), "", ephemeral=False)
    apps.deploy(_app("second"), "", ephemeral=False)
    first, second = _function(cluster, "first"), _function(cluster, "second")
    ingress = _demand(cluster, first, 8)
    started = _started(worker)
    assert len(started) == 8  # the whole core
    for container_id in started:
        cluster.container_started(container_id, "10.0.0.1:1")
    for slot_id in range(8):
        cluster.release(ingress, slot_id)  # all idle now, warm for their scaledown window
    events(ingress)
    _demand(cluster, second, 2, first_slot=100)
    stops = []
    while not worker.outbox.empty():
        command = worker.outbox.get_nowait()
        if command.WhichOneof("kind") == "stop":
            stops.append(command.stop.container_id)
    assert len(stops) == 2 and set(stops) <= set(started)  # the two idle longest, only as many as needed
    assert all(first.containers[c].state == "draining" for c in stops)
    for container_id in stops:
        cluster.container_exited(container_id, "")
    assert len(_started(worker)) == 2  # the second function's containers, in the room they left
    assert [c.function for c in cluster.containers.values()].count(second) == 2
