"""The scheduler's side of held slots: which assignments an ingress may hold, and when it is
told to give them back; on the real Cluster and Apps, without sockets."""

from __future__ import annotations

from pathlib import Path

from scheduler.cluster import Cluster
from scheduler.model import FunctionState, IngressSession
from tests.unit.scheduler_harness import events, harness, kinds, warm


def _setup(tmp_path: Path, max_inputs: int) -> tuple[Cluster, IngressSession, FunctionState]:
    h = harness(tmp_path, max_inputs)
    return h.cluster, h.ingress, h.fn


def test_a_slot_may_be_held_while_nothing_waits_for_the_function(tmp_path: Path) -> None:
    cluster, ingress, fn = _setup(tmp_path, max_inputs=2)
    cluster.acquire(ingress, 1, fn.id)  # queued: no container yet, and no slot out to recall
    assert kinds(events(ingress)) == []
    warm(cluster, fn)
    cluster.acquire(ingress, 2, fn.id)  # its last free slot: held too, as nothing waits
    assignments = [e.assignment for e in events(ingress) if e.HasField("assignment")]
    assert [(a.slot_id, a.may_hold) for a in assignments] == [(1, True), (2, True)]


def test_a_request_that_must_wait_recalls_the_functions_held_slots(tmp_path: Path) -> None:
    cluster, ingress, fn = _setup(tmp_path, max_inputs=2)
    warm(cluster, fn)
    other = IngressSession(id="in-2")
    cluster.add_ingress(other)
    cluster.acquire(ingress, 1, fn.id)
    cluster.acquire(other, 1, fn.id)
    events(ingress)
    events(other)
    cluster.acquire(other, 2, fn.id)  # no slot free: it waits, and every ingress is asked
    assert [e.recall.function_id for e in events(ingress) if e.HasField("recall")] == [fn.id]
    assert kinds(events(other)) == ["recall"]
    cluster.acquire(other, 3, fn.id)  # already waiting: no second recall
    assert events(ingress) == []
    cluster.release(ingress, 1)  # the first ingress gives its slot back
    (event,) = events(other)
    assert (event.assignment.slot_id, event.assignment.may_hold) == (2, False)  # still one waiting


def test_one_input_per_container_is_held_while_nothing_waits_and_recalled_when_a_request_must(
    tmp_path: Path,
) -> None:
    cluster, ingress, fn = _setup(tmp_path, max_inputs=1)
    warm(cluster, fn)
    cluster.acquire(ingress, 1, fn.id)
    (granted,) = events(ingress)
    assert granted.assignment.may_hold  # the ingress's next request may go straight there
    cluster.acquire(ingress, 2, fn.id)  # the one slot is out: this waits, and asks for it back
    assert kinds(events(ingress)) == ["recall"]
    cluster.release(ingress, 1)
    (event,) = events(ingress)
    assert (event.assignment.slot_id, event.assignment.may_hold) == (2, True)  # nothing else waits


def test_a_draining_container_recalls_its_held_slots(tmp_path: Path) -> None:
    cluster, ingress, fn = _setup(tmp_path, max_inputs=2)
    warm(cluster, fn)
    cluster.acquire(ingress, 1, fn.id)
    events(ingress)
    cluster.retire([fn])
    assert fn.id in [e.recall.function_id for e in events(ingress) if e.HasField("recall")]
