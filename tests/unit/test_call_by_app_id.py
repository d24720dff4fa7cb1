"""Which app a call naming an app id reaches (how `stoker run` reaches its ephemeral app), and
who may name one: a workspace-token caller any live app; a container only its own."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from protos import stoker_pb2 as pb
from scheduler.apps import AppError, Apps
from scheduler.calls import Calls
from scheduler.cluster import Cluster
from scheduler.store import Store
from tests.unit.scheduler_harness import minimal_bundle


def _definition(name: str) -> pb.AppDefinition:
    return pb.AppDefinition(name=name, entry="app.py", bundle=minimal_bundle(), functions=[pb.FunctionSpec(name="f")])


@pytest.fixture
def calls(tmp_path: Path) -> Calls:
    apps = Apps(Store(tmp_path / "stoker.db"), Cluster(queue_timeout=5), "ws", "localhost", "http", 8000)
    return Calls(apps, apps.cluster)


def test_a_call_naming_an_ephemeral_apps_id_reaches_it_not_the_deployed_namesake(calls: Calls) -> None:
    deployed = calls.apps.deploy(_definition("same"), "", ephemeral=False).app_id
    run = calls.apps.deploy(_definition("same"), "", ephemeral=True, app_id="ap-run").app_id
    assert calls.find("same", "", "f").app.app_id == deployed
    assert calls.find("same", "", "f", app_id=run).app.app_id == run


def test_a_container_may_name_only_its_own_app_by_id(calls: Calls) -> None:
    other = calls.apps.deploy(_definition("other"), "", ephemeral=True, app_id="ap-other").app_id
    own = calls.apps.deploy(_definition("mine"), "", ephemeral=True, app_id="ap-mine").app_id
    assert calls.find("mine", "", "f", caller_app_id=own, app_id=own).app.app_id == own
    with pytest.raises(AppError) as refused:
        calls.find("other", "", "f", caller_app_id=own, app_id=other)
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(AppError) as by_name:  # nor reach another ephemeral app by its name
        calls.find("other", "", "f", caller_app_id=own)
    assert by_name.value.code == grpc.StatusCode.NOT_FOUND


def test_an_app_id_must_be_live_and_carry_the_name_the_call_gives(calls: Calls) -> None:
    run = calls.apps.deploy(_definition("named"), "", ephemeral=True, app_id="ap-run").app_id
    with pytest.raises(AppError) as renamed:
        calls.find("elsewhere", "", "f", app_id=run)
    assert renamed.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "named 'named', not 'elsewhere'" in renamed.value.message
    calls.apps.stop_app_id(run)
    with pytest.raises(AppError) as gone:
        calls.find("named", "", "f", app_id=run)
    assert gone.value.code == grpc.StatusCode.NOT_FOUND
    assert "not running any more" in gone.value.message
