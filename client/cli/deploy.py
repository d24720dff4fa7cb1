"""`stoker deploy`, `stoker app list` and `stoker app stop`: one-shot control-plane calls."""

from __future__ import annotations

import time
from collections.abc import Callable

from client.app_ref import AppRef
from client.appfile import load_definition
from client.connection import rpc_errors, scheduler_stub
from client.exceptions import ExecutionError
from protos import stoker_pb2 as pb

# Image builds run within the deploy; the scheduler bounds its wait for them (15 min).
DEPLOY_TIMEOUT = 20 * 60


def deploy(ref: AppRef, environment: str, build_output: Callable[[str], None] = print) -> pb.DeployResponse:
    """Deploy the referenced app, passing image build output lines on as they come."""
    definition = load_definition(ref)  # before any RPC: a broken file changes nothing
    stub, metadata = scheduler_stub()
    request = pb.DeployRequest(app=definition, environment=environment)
    with rpc_errors():
        for event in stub.Deploy(request, metadata=metadata, timeout=DEPLOY_TIMEOUT):
            if event.WhichOneof("kind") == "build_output":
                build_output(event.build_output)
            elif event.WhichOneof("kind") == "deployed":
                return event.deployed
    raise ExecutionError("the scheduler ended the deploy without a result")


def list_apps() -> list[pb.AppInfo]:
    stub, metadata = scheduler_stub()
    with rpc_errors():
        return list(stub.ListApps(pb.ListAppsRequest(), metadata=metadata, timeout=30).apps)


def stop_app(name: str, environment: str) -> str:
    stub, metadata = scheduler_stub()
    with rpc_errors():
        request = pb.StopAppRequest(name=name, environment=environment)
        return str(stub.StopApp(request, metadata=metadata, timeout=30).app_id)


def format_apps(apps: list[pb.AppInfo]) -> str:
    if not apps:
        return "No apps are running."
    rows = [("NAME", "STATE", "VERSION", "CONTAINERS", "CREATED", "URLS")]
    for a in apps:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(a.created_at))
        urls = " ".join(e.url for e in a.endpoints) or "-"
        name = f"{a.name} ({a.environment})" if a.environment else a.name
        rows.append((name, a.state, str(a.version), str(a.containers), created, urls))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "  " + row[-1] for row in rows
    )
