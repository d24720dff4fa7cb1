"""A request routed by an ingress's table from just before a reload: the scheduler places it on
the version that replaced its function, and refuses it only once the app is gone."""

from __future__ import annotations

from pathlib import Path

from protos import stoker_pb2 as pb
from tests.unit.scheduler_harness import events, harness, kinds, warm


def test_a_request_for_a_replaced_function_goes_to_its_successor(tmp_path: Path) -> None:
    h = harness(tmp_path, max_inputs=1)
    old = h.fn
    new = h.deploy_again(max_inputs=1)
    assert new.id != old.id
    events(h.ingress)  # the new route table
    h.cluster.acquire(h.ingress, 1, old.id)  # sent before the new table arrived
    assert kinds(events(h.ingress)) == []  # waiting for the new version's container, not refused
    warm(h.cluster, new)
    (event,) = events(h.ingress)
    assert event.assignment.slot_id == 1
    assert event.assignment.container_id in new.containers


def test_a_function_replaced_twice_still_leads_to_the_live_version(tmp_path: Path) -> None:
    h = harness(tmp_path, max_inputs=1)
    first = h.fn
    h.deploy_again(max_inputs=1)
    latest = h.deploy_again(max_inputs=1)
    assert h.cluster.live_function(first.id) is latest


def test_a_request_for_a_stopped_app_is_refused_with_why(tmp_path: Path) -> None:
    h = harness(tmp_path, max_inputs=1)
    old = h.fn
    h.deploy_again(max_inputs=1)
    h.apps.stop("held", "")
    events(h.ingress)
    h.cluster.acquire(h.ingress, 1, old.id)
    (event,) = events(h.ingress)
    assert event.rejection.reason == pb.REFUSAL_APP_STOPPED
    assert "stopped" in event.rejection.message
