"""Why a slot was refused travels neutrally; the ingress maps each reason to an HTTP status and
the scheduler to a call's gRPC status, each in one table that misses none."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from ingress.scheduler_link import HTTP_STATUS
from protos import stoker_pb2 as pb
from scheduler.calls import GRPC_STATUS
from tests.unit.scheduler_harness import events, harness, kinds

REASONS = {value for value in pb.Refusal.values() if value != pb.REFUSAL_UNSPECIFIED}


def test_every_reason_has_an_http_status_and_a_grpc_status() -> None:
    assert set(HTTP_STATUS) == REASONS
    assert set(GRPC_STATUS) == REASONS


def test_a_stopped_app_is_not_found_and_the_rest_is_unavailable_for_now() -> None:
    assert HTTP_STATUS[pb.REFUSAL_APP_STOPPED] == 404
    assert GRPC_STATUS[pb.REFUSAL_APP_STOPPED] == grpc.StatusCode.NOT_FOUND
    for reason in REASONS - {pb.REFUSAL_APP_STOPPED}:
        assert HTTP_STATUS[reason] == 503
        assert GRPC_STATUS[reason] == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_queued_request_is_refused_with_the_queue_timeout_reason(tmp_path: Path) -> None:
    h = harness(tmp_path, max_inputs=1)
    h.cluster.acquire(h.ingress, 7, h.fn.id)  # no container is warm: it waits
    assert kinds(events(h.ingress)) == []
    h.cluster.tick(time.monotonic() + 6)
    (event,) = events(h.ingress)
    assert (event.rejection.slot_id, event.rejection.reason) == (7, pb.REFUSAL_QUEUE_TIMEOUT)
    assert "free slot" in event.rejection.message
    assert h.ingress.waiting == {}


def test_a_queued_slot_given_back_or_left_by_its_ingress_leaves_the_queue(tmp_path: Path) -> None:
    h = harness(tmp_path, max_inputs=1)
    h.cluster.acquire(h.ingress, 1, h.fn.id)
    h.cluster.acquire(h.ingress, 2, h.fn.id)
    assert len(h.fn.queue) == 2
    h.cluster.release(h.ingress, 1)  # its client left while it waited
    assert len(h.fn.queue) == 1 and list(h.ingress.waiting) == [2]
    h.cluster.remove_ingress(h.ingress)
    assert len(h.fn.queue) == 0
