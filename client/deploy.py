"""`stoker deploy`, `stoker app list` and `stoker app stop`: one-shot control-plane calls."""

from __future__ import annotations

import time
from pathlib import Path

from client.appfile import load_definition
from client.rpc import scheduler_stub
from protos import stoker_pb2 as pb


def deploy(path: Path, environment: str) -> pb.DeployResponse:
    definition = load_definition(path)  # before any RPC: a broken file changes nothing
    with scheduler_stub() as stub:
        return stub.Deploy(pb.DeployRequest(app=definition, environment=environment), timeout=60)


def list_apps() -> list[pb.AppInfo]:
    with scheduler_stub() as stub:
        return list(stub.ListApps(pb.ListAppsRequest(), timeout=30).apps)


def stop_app(name: str, environment: str) -> str:
    with scheduler_stub() as stub:
        return str(stub.StopApp(pb.StopAppRequest(name=name, environment=environment), timeout=30).app_id)


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
