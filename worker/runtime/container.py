"""A container's main program: load one function of one app and serve it over gRPC.

Run by `python -m worker.runtime` (worker/runtime/__main__.py) or in a fork of a template
(worker/runtime/template.py), both after isolation.isolate(). The worker starts it with the code
bundle as working directory and the variables of protos/container_env.py: ENTRY (the app file),
FUNCTION, BIND_HOST, ADVERTISE_HOST and READY_FD (a pipe on which the serving address is written
once, when ready).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from client.app_ref import in_bundle
from client.appfile import find_app, find_function, import_source
from client.cls import Cls
from client.event_loop import run_on_fastest_loop
from client.function import Function
from client.with_options import in_pool
from protos import container_env as cenv
from protos import stoker_pb2_grpc as pb_grpc
from protos.exchange_link import CHANNEL_OPTIONS
from worker.runtime.exchange import ContainerServicer
from worker.runtime.instance import serve_class
from worker.runtime.lifespan import Lifespan
from worker.runtime.retirement import Retirement
from worker.runtime.served import Served, StartupError, serve_function
from worker.runtime.snapshot import Snapshot, restore
from worker.runtime.threads import still_running
from worker.runtime.web_server import WebServerStartupError

log = logging.getLogger("stoker.container")

_PR_SET_PDEATHSIG = 1

# Seconds a stopping container waits for its inputs in flight to finish. With the exit hooks'
# EXIT_GRACE_SECONDS (instance.py) this fits in the 10 s a worker gives a container it stops
# (the scheduler's STOP_GRACE_SECONDS, and the worker's own SHUTDOWN_GRACE_SECONDS).
DRAIN_SECONDS = 5.0


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when the worker dies, so no container outlives it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


async def load(target: Function | Cls, snapped: object | None = None) -> Served:
    """What the container serves, ready for its first input; StartupError when it cannot be.
    `snapped`: the class's instance from the memory snapshot it was forked from."""
    try:
        served = await serve_class(target, snapped) if isinstance(target, Cls) else serve_function(target)
    except WebServerStartupError as exc:
        raise StartupError(str(exc)) from None
    # Everything alive now (the imports, the app) lives as long as the container: keep the cyclic
    # collector from walking it again on every full collection, which cost ~8 % of a warm
    # container's CPU under load.
    gc.freeze()
    return served


async def serve(target: Function | Cls, snapped: object | None = None) -> int:
    try:
        served = await load(target, snapped)
    except StartupError as exc:
        log.error("%s", exc)  # the last line of output: the worker and the waiting callers see it
        return leave_abandoned_threads(1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # FastAPI runs sync endpoints in anyio's thread pool (40 threads by default): give it one
    # thread per concurrent input this container may be handed.
    import anyio.to_thread

    max_inputs = served.max_inputs
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, max_inputs)
    # Sync function calls and generators run in the loop's executor: one thread per input too.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=max(8, max_inputs), thread_name_prefix="call"))

    lifespans = [Lifespan(app) for app in served.web_apps.values()]
    for lifespan in lifespans:
        await lifespan.startup()
    retirement = Retirement(stop, bound=served.timeout + 5)
    server = grpc.aio.server(options=CHANNEL_OPTIONS)
    servicer = ContainerServicer(served, retirement)
    pb_grpc.add_ContainerServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"{os.environ.get(cenv.BIND_HOST, '127.0.0.1')}:0")
    await server.start()
    address = f"{os.environ.get(cenv.ADVERTISE_HOST, '127.0.0.1')}:{port}"
    ready_fd = int(os.environ.get(cenv.READY_FD, "-1"))
    if ready_fd >= 0:
        os.write(ready_fd, (address + "\n").encode())
        os.close(ready_fd)
    log.info("serving on %s", address)

    await stop.wait()
    retirement.close()
    # Stopping: the inputs in flight may finish (new ones may still come meanwhile), then the
    # streams close, then the @modal.exit hooks run (their own bound: instance.py).
    await servicer.drain(DRAIN_SECONDS)
    await server.stop(grace=None)
    if served.on_stop is not None:
        await served.on_stop()
    for lifespan in lifespans:
        await lifespan.shutdown()
    return leave_abandoned_threads(0)


def leave_abandoned_threads(code: int) -> int:
    """Exit now with `code` if threads still run code past its timeout (the logs said which):
    the event loop's shutdown, then Python's, would wait for them as long as that code takes."""
    if still_running():
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def load_target() -> Function | Cls:
    """Import the app and find the function (or class) this container serves."""
    # The entry is imported as the module it was where it was deployed from (a package's module
    # keeps its package, so relative imports work); of several Apps in it, the one deployed.
    module = import_source(in_bundle(Path(os.environ[cenv.ENTRY]), Path.cwd()))
    if workdir := os.environ.get(cenv.WORKDIR):  # the image's .workdir(): the app's code is imported by now
        os.chdir(workdir)
    target = find_function(find_app(module, name=os.environ.get(cenv.APP_NAME, "")), os.environ[cenv.FUNCTION])
    if os.environ.get(cenv.OPTIONS):  # a pool of with_options(): its concurrency and timeout are ours to keep
        target = in_pool(target, bytes.fromhex(os.environ[cenv.OPTIONS]))
    return target


def main(snapshot: Snapshot | None = None) -> None:
    """Serve until stopped. `snapshot`: this process is a fork of a memory-snapshot template,
    the app imported and its snap=True hooks run there."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    die_with_parent()
    if os.getppid() == 1:
        sys.exit(1)  # the worker died before we could ask to die with it
    if snapshot is None:
        sys.exit(run_on_fastest_loop(serve(load_target())))
    restore()
    sys.exit(run_on_fastest_loop(serve(snapshot.target, snapshot.instance)))
