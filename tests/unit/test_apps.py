"""Deploy validation, URLs, versions and persistence, on a real SQLite file, without sockets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc
import pytest

from protos import stoker_pb2 as pb
from scheduler.apps import AppError, Apps
from scheduler.cluster import Cluster
from scheduler.store import Store
from tests.unit.scheduler_harness import minimal_bundle


def _app(name: str, *functions: tuple[str, str]) -> pb.AppDefinition:
    return pb.AppDefinition(
        name=name,
        entry="app.py",
        bundle=minimal_bundle(),
        functions=[
            pb.FunctionSpec(name=fn, web=pb.WebEndpoint(kind="fastapi_endpoint", method="GET", label=label))
            for fn, label in functions
        ],
    )


def _apps(tmp_path: Path) -> Apps:
    return Apps(Store(tmp_path / "stoker.db"), Cluster(queue_timeout=5), "ws", "localhost", "http", 8000)


def test_deploy_prints_the_default_url(tmp_path: Path) -> None:
    deployed = _apps(tmp_path).deploy(_app("My_App", ("Square", "")), "", ephemeral=False)
    assert [(e.function, e.url) for e in deployed.endpoints] == [("Square", "http://ws--my-app-square.localhost:8000")]


def test_a_long_default_label_is_cut_not_refused(tmp_path: Path) -> None:
    deployed = _apps(tmp_path).deploy(_app("a" * 50, ("handler_" + "b" * 30, "")), "", ephemeral=False)
    host = deployed.endpoints[0].url.removeprefix("http://").split(".")[0]
    assert len(host) == 63


def test_an_invalid_custom_label_is_refused_with_the_rule(tmp_path: Path) -> None:
    with pytest.raises(AppError) as caught:
        _apps(tmp_path).deploy(_app("app", ("f", "Not_Valid")), "", ephemeral=False)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid DNS label" in caught.value.message


def test_a_label_taken_by_another_app_is_refused(tmp_path: Path) -> None:
    apps = _apps(tmp_path)
    apps.deploy(_app("one", ("f", "api")), "", ephemeral=False)
    with pytest.raises(AppError) as caught:
        apps.deploy(_app("two", ("g", "api")), "", ephemeral=False)
    assert caught.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert "'one'" in caught.value.message


def test_redeploy_makes_a_new_version_of_the_same_app(tmp_path: Path) -> None:
    apps = _apps(tmp_path)
    first = apps.deploy(_app("app", ("f", "")), "", ephemeral=False)
    second = apps.deploy(_app("app", ("f", "")), "", ephemeral=False)
    assert second.app_id == first.app_id
    assert second.version == first.version + 1


def test_deployed_apps_come_back_and_served_ones_do_not(tmp_path: Path) -> None:
    apps = _apps(tmp_path)
    apps.deploy(_app("kept", ("f", "")), "", ephemeral=False)
    apps.deploy(_app("dev", ("f", "")), "", ephemeral=True, app_id="ap-dev")
    restarted = _apps(tmp_path)
    restarted.load()
    assert [(a.name, a.state) for a in restarted.list().apps] == [("kept", "deployed")]


def test_an_app_whose_bundle_lacks_its_file_is_refused(tmp_path: Path) -> None:
    app = _app("app", ("f", ""))
    app.entry = "other.py"
    with pytest.raises(AppError) as caught:
        _apps(tmp_path).deploy(app, "", ephemeral=False)
    assert "does not contain the app file" in caught.value.message


def test_a_crash_mid_deploy_leaves_the_previous_version(tmp_path: Path) -> None:
    apps = _apps(tmp_path)
    apps.deploy(_app("app", ("f", "")), "", ephemeral=False)
    # The next write to the apps table fails half-way through the deploy's transaction, as a crash
    # or a full disk would: the bundle row written before it must roll back with it.
    db = apps.store._db
    db.execute("CREATE TRIGGER fail BEFORE INSERT ON apps BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(sqlite3.IntegrityError, match="disk full"):
        apps.deploy(_app("app", ("f", ""), ("g", "")), "", ephemeral=False)
    db.execute("DROP TRIGGER fail")
    restarted = _apps(tmp_path)
    restarted.load()
    (app,) = restarted.list().apps
    assert app.version == 1
    assert [e.function for e in app.endpoints] == ["f"]
    assert db.execute("SELECT COUNT(*) FROM bundles").fetchone()[0] == 1
