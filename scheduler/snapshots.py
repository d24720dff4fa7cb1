"""Which memory snapshots are live, so that workers keep the templates of those and drop the rest.

A worker makes a snapshot template for a function with `enable_memory_snapshot` when a container
of it is first needed there (worker/snapshots.py), and keeps it while the function's version is
live: the scheduler names that version in every StartContainer (`snapshot_key`) and tells each
worker the keys that are live, when it registers and whenever a function retires.
"""

from __future__ import annotations

from collections.abc import Iterable

from protos import stoker_pb2 as pb
from scheduler.model import FunctionState


def snapshot_key(fn: FunctionState) -> str:
    """The key of `fn`'s snapshot templates: its app version and name, the same for each of a
    class's parameter pools (their templates differ by parameters on the worker); "" without."""
    if not fn.spec.enable_memory_snapshot:
        return ""
    return f"{fn.app.app_id}:{fn.app.version}:{fn.spec.name}"


def live_snapshots(functions: Iterable[FunctionState]) -> pb.WorkerCommand:
    """The command telling a worker which snapshot keys are live among `functions`."""
    keys = sorted({key for fn in functions if not fn.retired and (key := snapshot_key(fn))})
    return pb.WorkerCommand(live_snapshots=pb.LiveSnapshots(keys=keys))
