"""`stoker status`: the scheduler's live view of workers, GPUs, functions and containers."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import json_format

from client.connection import rpc_errors, scheduler_stub
from protos import stoker_pb2 as pb

Row = Sequence[str]


def fetch_status() -> pb.StatusResponse:
    stub, metadata = scheduler_stub()
    with rpc_errors():
        response: pb.StatusResponse = stub.Status(pb.StatusRequest(), metadata=metadata, timeout=30)
        return response


def to_json(status: pb.StatusResponse) -> str:
    # Zeros stay in: a script reading `in_flight` should not have to know proto3 drops them.
    return json_format.MessageToJson(
        status, preserving_proto_field_name=True, always_print_fields_with_no_presence=True, indent=2
    )


def format_status(status: pb.StatusResponse) -> str:
    return "\n\n".join(
        [
            "WORKERS\n" + _workers(status),
            _ingresses(status.ingresses),
            "FUNCTIONS\n" + _functions(status.functions),
            "CONTAINERS\n" + _containers(status),
        ]
    )


def _workers(status: pb.StatusResponse) -> str:
    if not status.workers:
        return "No workers are registered."
    rows: list[Row] = [("ID", "HOST", "CONTAINERS", "CPU", "MEMORY", "GPUS", "HEARTBEAT")]
    for w in status.workers:
        rows.append(
            (
                w.worker_id,
                w.hostname,
                str(w.containers),
                f"{w.cpu_reserved:g}/{w.cpu_count}",
                memory_summary(w),
                gpu_summary(w),
                f"{_age(w.last_heartbeat_age)} ago",
            )
        )
    return _table(rows)


def memory_summary(worker: pb.WorkerInfo) -> str:
    """Reserved of total, in GiB: `"2.0/15.6 GiB"` (a worker that did not say: reserved only)."""
    reserved = worker.memory_reserved_mib / 1024
    if not worker.memory_bytes:
        return f"{reserved:.1f} GiB"
    return f"{reserved:.1f}/{worker.memory_bytes / 2**30:.1f} GiB"


def _ingresses(count: int) -> str:
    if count == 0:
        return "No ingress is connected: endpoints cannot be reached until one is."
    return f"{count} ingress{'es' if count > 1 else ''} connected."


def _functions(functions: Sequence[pb.FunctionInfo]) -> str:
    if not functions:
        return "No apps are running."
    rows: list[Row] = [("APP", "FUNCTION", "VERSION", "CONTAINERS", "QUEUED", "GPU")]
    held_back = []
    for f in functions:
        rows.append((f.app_name, f.function, str(f.version), str(f.containers), str(f.queued), f.gpu or "-"))
        if f.scaling:
            held_back.append(f"{f.app_name}.{f.function}: {f.queued} queued, no container started: {f.scaling}")
    return "\n".join([_table(rows), *held_back])


def _containers(status: pb.StatusResponse) -> str:
    if not status.containers:
        return "No containers are running."
    gpu_names = {w.worker_id: {g.index: g.name for g in w.gpus} for w in status.workers}
    rows: list[Row] = [("ID", "FUNCTION", "WORKER", "STATE", "IN-FLIGHT", "GPUS")]
    for c in status.containers:
        names = gpu_names.get(c.worker_id, {})
        gpus = ", ".join(f"{i}:{names.get(i, '?')}" for i in c.gpu_indices) or "-"
        rows.append(
            (
                c.container_id,
                f"{c.app_name}.{c.function}",
                c.worker_id,
                c.state,
                f"{c.in_flight}/{c.max_inputs or 1}",
                gpus,
            )
        )
    return _table(rows)


def gpu_summary(worker: pb.WorkerInfo) -> str:
    """`"1/2 used: A10G, H100"`, or `"none"` for a worker without GPUs."""
    if not worker.gpus:
        return "none"
    used = len(set(worker.gpus_in_use))
    return f"{used}/{len(worker.gpus)} used: " + ", ".join(g.name or f"gpu{g.index}" for g in worker.gpus)


def _age(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 120:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def _table(rows: Sequence[Row]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)
