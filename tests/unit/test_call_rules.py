"""Modal's call rules where they are enforced: the scheduler refuses web functions (with their
URL) and calls of the wrong kind (from the spec's is_generator), and the container checks the
kind again; one copy of the messages."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from client.exceptions import InvalidError
from protos import stoker_pb2 as pb
from scheduler.apps import AppError, Apps
from scheduler.calls import Calls
from scheduler.cluster import Cluster
from scheduler.store import Store
from tests.unit.conftest import AppFactory
from tests.unit.scheduler_harness import minimal_bundle
from worker.runtime.calls import check_call_kind


def _calls(tmp_path: Path) -> Calls:
    apps = Apps(Store(tmp_path / "stoker.db"), Cluster(queue_timeout=5), "ws", "localhost", "http", 8000)
    web = pb.WebEndpoint(kind="fastapi_endpoint", method="GET")
    definition = pb.AppDefinition(
        name="rules",
        entry="app.py",
        bundle=minimal_bundle(),
        functions=[
            pb.FunctionSpec(name="work"),
            pb.FunctionSpec(name="page", web=web),
            pb.FunctionSpec(name="count", is_generator=True),
        ],
    )
    apps.deploy(definition, "", ephemeral=False)
    return Calls(apps, apps.cluster)


def _request(function: str, generator: bool = False) -> pb.CallRequest:
    return pb.CallRequest(app_name="rules", function=function, generator=generator)


def test_the_scheduler_refuses_to_call_or_spawn_a_web_function_and_gives_its_url(tmp_path: Path) -> None:
    calls = _calls(tmp_path)
    url = calls.find("rules", "", "page").url
    assert url
    with pytest.raises(AppError) as spawned:
        calls.spawn(_request("page"))
    assert spawned.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "page is a web function" in spawned.value.message and url in spawned.value.message

    async def first_output() -> None:
        async for _ in calls.outputs(_request("page")):
            pass

    with pytest.raises(AppError) as called:
        asyncio.run(first_output())
    assert called.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "page is a web function" in called.value.message and url in called.value.message


def test_the_scheduler_refuses_to_spawn_a_generator_call(tmp_path: Path) -> None:
    calls = _calls(tmp_path)
    for request in (_request("work", generator=True), _request("count")):
        with pytest.raises(AppError) as refused:
            calls.spawn(request)
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "cannot be spawned; use .remote_gen()" in refused.value.message


def test_the_scheduler_refuses_a_call_of_the_wrong_kind_before_placing_it(tmp_path: Path) -> None:
    calls = _calls(tmp_path)

    async def outputs(request: pb.CallRequest) -> None:
        async for _ in calls.outputs(request):
            pass

    for request, message in (
        (_request("count"), "count is a generator function: call it with .remote_gen()"),
        (_request("work", generator=True), "work is not a generator function: call it with .remote()"),
    ):
        with pytest.raises(AppError) as refused:
            asyncio.run(outputs(request))
        assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert message in refused.value.message
    assert not calls.cluster.containers  # nothing was started for them


def countdown(n: int) -> Iterator[int]:
    yield from range(n, 0, -1)


def square(x: int) -> int:
    return x * x


def test_the_container_refuses_a_call_of_the_wrong_kind(make_app: AppFactory) -> None:
    app = make_app("rules")
    generator = app.function()(countdown)
    plain = app.function()(square)
    with pytest.raises(InvalidError, match=r"countdown is a generator function: call it with \.remote_gen\(\)"):
        check_call_kind(generator, wants_generator=False)
    with pytest.raises(InvalidError, match=r"square is not a generator function: call it with \.remote\(\)"):
        check_call_kind(plain, wants_generator=True)
    check_call_kind(generator, wants_generator=True)
    check_call_kind(plain, wants_generator=False)
