"""An AppError ends its RPC with its status and message, in one place for every handler; a
`serve` session whose first version is live reports a rejected reload instead of ending."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos import stoker_pb2 as pb
from scheduler.apps import Apps
from scheduler.cluster import Cluster
from scheduler.secrets import Secrets
from scheduler.servicer import SchedulerServicer
from scheduler.store import Store
from scheduler.tokens import Tokens
from tests.unit.scheduler_harness import minimal_bundle


class Aborted(Exception):
    pass


class FakeContext:
    """What the handlers use of a grpc.aio.ServicerContext: abort() raises, as grpc's does."""

    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise Aborted

    def invocation_metadata(self) -> tuple[()]:
        return ()


def _servicer(tmp_path: Path) -> SchedulerServicer:
    store = Store(tmp_path / "stoker.db")
    cluster = Cluster(queue_timeout=5)
    secrets = Secrets(store, cluster)
    apps = Apps(store, cluster, "ws", "localhost", "http", 8000)
    return SchedulerServicer(apps, cluster, store, Tokens(store, cluster), secrets, call_key=b"k")


def _app(name: str) -> pb.AppDefinition:
    return pb.AppDefinition(name=name, entry="app.py", bundle=minimal_bundle(), functions=[pb.FunctionSpec(name="f")])


def test_a_unary_handlers_app_error_aborts_with_its_status(tmp_path: Path) -> None:
    servicer, context = _servicer(tmp_path), FakeContext()
    ctx: Any = context
    with pytest.raises(Aborted):
        asyncio.run(servicer.StopApp(pb.StopAppRequest(name="nope"), ctx))
    assert context.code == grpc.StatusCode.NOT_FOUND and "no deployed app named 'nope'" in context.details


def test_a_streaming_handlers_app_error_aborts_with_its_status(tmp_path: Path) -> None:
    servicer, context = _servicer(tmp_path), FakeContext()
    ctx: Any = context

    async def drain() -> None:
        async for _ in servicer.Deploy(pb.DeployRequest(app=_app("bad name")), ctx):
            pass

    with pytest.raises(Aborted):
        asyncio.run(drain())
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT and "is not valid" in context.details


async def _serve(servicer: SchedulerServicer, ctx: Any, *apps: pb.AppDefinition) -> list[str]:
    async def requests() -> AsyncIterator[pb.ServeRequest]:
        for app in apps:
            yield pb.ServeRequest(app=app)

    return [str(r.WhichOneof("kind")) async for r in servicer.Serve(requests(), ctx)]


def test_serve_aborts_before_its_first_version_is_live(tmp_path: Path) -> None:
    servicer, context = _servicer(tmp_path), FakeContext()
    ctx: Any = context
    with pytest.raises(Aborted):
        asyncio.run(_serve(servicer, ctx, _app("bad name")))
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT


def test_serve_reports_a_rejected_reload_once_live(tmp_path: Path) -> None:
    servicer, context = _servicer(tmp_path), FakeContext()
    ctx: Any = context
    broken = _app("served")
    broken.entry = "missing.py"
    got = asyncio.run(_serve(servicer, ctx, _app("served"), broken))
    assert [kind for kind in got if kind != "log"] == ["deployed", "rejected"]
    assert context.code is None
    assert servicer.apps.live == {}  # the session ended: its app went with it
