"""`stoker deploy`, `stoker app list` and `stoker app stop`: one-shot control-plane calls."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from client import config as client_config
from client.appfile import load_definition
from client.exceptions import from_rpc_error
from client.rpc import CHANNEL_OPTIONS, require
from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc


def _stub(channel: grpc.Channel) -> pb_grpc.SchedulerStub:
    return pb_grpc.SchedulerStub(channel)


def deploy(path: Path, environment: str) -> pb.DeployResponse:
    definition = load_definition(path)  # before any RPC: a broken file changes nothing
    cfg = require(client_config.load())
    with grpc.insecure_channel(cfg.scheduler, options=CHANNEL_OPTIONS) as channel:
        try:
            return _stub(channel).Deploy(pb.DeployRequest(app=definition, environment=environment), timeout=60)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None


def list_apps() -> list[pb.AppInfo]:
    cfg = require(client_config.load())
    with grpc.insecure_channel(cfg.scheduler, options=CHANNEL_OPTIONS) as channel:
        try:
            return list(_stub(channel).ListApps(pb.ListAppsRequest(), timeout=30).apps)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None


def stop_app(name: str, environment: str) -> str:
    cfg = require(client_config.load())
    with grpc.insecure_channel(cfg.scheduler, options=CHANNEL_OPTIONS) as channel:
        try:
            return str(_stub(channel).StopApp(pb.StopAppRequest(name=name, environment=environment), timeout=30).app_id)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None


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
