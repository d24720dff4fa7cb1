"""A memory snapshot, taken the way a fork template takes one: a process imports the app and runs
its `@modal.enter(snap=True)` hooks once, and each container is a fork of it that runs only the
`snap=False` hooks before it serves (worker/runtime/template.py, `--snapshot`).

What crosses the fork is the process's memory: modules, the instance and whatever its snap=True
hooks built. What does not: threads (a thread pool made before the fork is gone in the
container), GPU state (CUDA cannot be used in a fork of a process that initialised it, so the
template sees no GPU: CUDA_VISIBLE_DEVICES is empty there), and connections (a function call
from a snap=True hook is refused: its gRPC channel would be inherited, broken, by every container).

OpenMP is the one thread pool handled here, because torch uses it for every CPU op: GNU OpenMP
(libgomp) hangs in a fork of a process whose parallel regions ran on several threads. The
template runs with OMP_NUM_THREADS=1, so its pool never starts, and each container sets the
number of threads it would have had (its own OMP_NUM_THREADS, else one per CPU it may use).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import sys
from dataclasses import dataclass

from client import connection
from client.cls import Cls
from client.function import Function

log = logging.getLogger("stoker.container")

CALLS_REFUSED = (
    "a function call from the app's import or a @modal.enter(snap=True) hook is not possible with "
    "enable_memory_snapshot=True (its connection would not survive into the containers); "
    "make it in a snap=False hook or in a method"
)


@dataclass(frozen=True)
class Snapshot:
    """What each container forked from the template starts from."""

    target: Function | Cls
    instance: object | None  # a class's, its snap=True hooks run; None for a function


def take() -> Snapshot:
    """In the template: import the app (from its environment and working directory, as a
    container does) and run the class's snap=True hooks. StartupError (logged) when a hook raised
    or they ran past the class's startup_timeout."""
    from worker.runtime.container import leave_abandoned_threads, load_target
    from worker.runtime.instance import new_instance, run_enter_hooks
    from worker.runtime.served import StartupError

    connection.calls_refused = CALLS_REFUSED
    target = load_target()
    log.info("creating memory snapshot for %s", target.name)
    if not isinstance(target, Cls):
        return Snapshot(target, None)
    instance = new_instance(target)

    async def enter_snap() -> None:
        try:
            await run_enter_hooks(target, instance, ("enter_snap",))  # within startup_timeout, as in a container
        except StartupError as exc:
            log.error("%s", exc)  # the last line, as a container's
            leave_abandoned_threads(1)  # a hook past its timeout still runs: exit now, not after it
            raise

    asyncio.run(enter_snap())  # the loop is closed again before any fork
    return Snapshot(target, instance)


def restore() -> None:
    """In a container, just forked: what the template held back."""
    connection.calls_refused = ""
    threads = _threads()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)  # its own count, OpenMP's and MKL's
    elif (gomp := _libgomp()) is not None:
        gomp.omp_set_num_threads(threads)


def _threads() -> int:
    given = os.environ.get("OMP_NUM_THREADS", "").split(",")[0]
    if given.isdigit() and int(given) > 0:
        return int(given)
    return len(os.sched_getaffinity(0))


def _libgomp() -> ctypes.CDLL | None:
    """GNU OpenMP, if something the app imported loaded it."""
    try:
        with open("/proc/self/maps") as maps:
            path = next((line.split()[-1] for line in maps if "/libgomp" in line), None)
    except OSError:
        return None
    return ctypes.CDLL(path) if path else None
