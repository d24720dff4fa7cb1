"""The scheduler's side of held slots: which assignments an ingress may hold, and when it is
told to give them back; on the real Cluster and Apps, without sockets."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from protos import stoker_pb2 as pb
from scheduler.apps import Apps
from scheduler.cluster import Cluster
from scheduler.model import FunctionState, IngressSession, WorkerSession
from scheduler.store import Store


def _app(max_inputs: int) -> pb.AppDefinition:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "import modal\n")
    web = pb.WebEndpoint(kind="fastapi_endpoint", method="GET")
    return pb.AppDefinition(
        name="held",
        entry="app.py",
        bundle=buffer.getvalue(),
        functions=[pb.FunctionSpec(name="page", web=web, max_inputs=max_inputs, min_containers=1, max_containers=1)],
    )


def _setup(tmp_path: Path, max_inputs: int) -> tuple[Cluster, IngressSession, FunctionState]:
    cluster = Cluster(queue_timeout=5)
    worker = WorkerSession(info=pb.WorkerRegister(worker_id="w1", hostname="h"))
    cluster.add_worker(worker)
    Apps(Store(tmp_path / "stoker.db"), cluster, "ws", "localhost", "http", 8000).deploy(
        _app(max_inputs), "", ephemeral=False
    )
    ingress = IngressSession(id="in-1")
    cluster.add_ingress(ingress)
    (fn,) = cluster.functions.values()
    ingress.outbox.put_nowait(None)
    _events(ingress)  # the route table and edge config
    return cluster, ingress, fn


def _warm(cluster: Cluster, fn: FunctionState) -> None:
    (container,) = fn.containers.values()
    cluster.container_started(container.id, "127.0.0.1:9")


def _events(ingress: IngressSession) -> list[pb.IngressEvent]:
    events = []
    while not ingress.outbox.empty():
        event = ingress.outbox.get_nowait()
        if event is not None:
            events.append(event)
    return events


def _kinds(events: list[pb.IngressEvent]) -> list[str]:
    return [str(e.WhichOneof("kind")) for e in events]


def test_a_slot_may_be_held_while_its_container_has_another_free(tmp_path: Path) -> None:
    cluster, ingress, fn = _setup(tmp_path, max_inputs=2)
    cluster.acquire(ingress, 1, fn.id)  # queued: no container yet
    _warm(cluster, fn)
    cluster.acquire(ingress, 2, fn.id)
    assignments = [e.assignment for e in _events(ingress) if e.HasField("assignment")]
    assert [(a.request_id, a.may_hold) for a in assignments] == [(1, True), (2, False)]


def test_a_request_that_must_wait_recalls_the_functions_held_slots(tmp_path: Path) -> None:
    cluster, ingress, fn = _setup(tmp_path, max_inputs=2)
    _warm(cluster, fn)
    other = IngressSession(id="in-2")
    cluster.add_ingress(other)
    cluster.acquire(ingress, 1, fn.id)
    cluster.acquire(other, 1, fn.id)
    _events(ingress)
    _events(other)
    cluster.acquire(other, 2, fn.id)  # no slot free: it waits, and every ingress is asked
    assert [e.recall.function_id for e in _events(ingress) if e.HasField("recall")] == [fn.id]
    assert _kinds(_events(other)) == ["recall"]
    cluster.acquire(other, 3, fn.id)  # already waiting: no second recall
    assert _events(ingress) == []
    cluster.release(ingress, 1)  # the first ingress gives its slot back
    (event,) = _events(other)
    assert (event.assignment.request_id, event.assignment.may_hold) == (2, False)  # still one waiting


def test_one_input_per_container_is_never_held_nor_recalled(tmp_path: Path) -> None:
    cluster, ingress, fn = _setup(tmp_path, max_inputs=1)
    _warm(cluster, fn)
    cluster.acquire(ingress, 1, fn.id)
    cluster.acquire(ingress, 2, fn.id)  # waits, with no recall: nothing can be held
    events = _events(ingress)
    assert _kinds(events) == ["assignment"]
    assert not events[0].assignment.may_hold


def test_a_draining_container_recalls_its_held_slots(tmp_path: Path) -> None:
    cluster, ingress, fn = _setup(tmp_path, max_inputs=2)
    _warm(cluster, fn)
    cluster.acquire(ingress, 1, fn.id)
    _events(ingress)
    cluster.retire([fn])
    assert fn.id in [e.recall.function_id for e in _events(ingress) if e.HasField("recall")]
