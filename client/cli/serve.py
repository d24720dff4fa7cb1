"""`stoker serve`: an ephemeral app that lives as long as this command and reloads on save."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import watchfiles

from client import config as client_config
from client.app_ref import AppRef, Source, locate
from client.appfile import AppFileError, load_definition
from client.cli.logs import format_line
from client.cli.up import LocalCluster
from client.config import ClientConfig
from client.connection import reachable, rpc_errors, scheduler_aio_stub
from client.exceptions import ConnectionError
from ingress.config import IngressConfig
from protos import stoker_pb2 as pb


def print_endpoints(deployed: pb.DeployResponse) -> None:
    for endpoint in deployed.endpoints:
        print(f"Created web function {endpoint.function} => {endpoint.url}", flush=True)


def print_warnings(deployed: pb.DeployResponse) -> None:
    """What the scheduler says is live but will not work as written (stderr: the deploy succeeded)."""
    for warning in deployed.warnings:
        print(f"Warning: {warning}", file=sys.stderr, flush=True)


def find_or_start_cluster() -> tuple[ClientConfig, LocalCluster | None]:
    """The cluster to serve on, and the embedded cluster if one was started for it."""
    cfg = client_config.load(include_serve_cluster=False)  # another serve's cluster goes when it does
    if cfg is not None and reachable(cfg.scheduler):
        return cfg, None
    if cfg is not None and not cfg.from_file:
        raise ConnectionError(f"STOKER_SCHEDULER={cfg.scheduler} is not reachable")
    # Nothing configured, or a config left by a `stoker up` that has stopped: run our own.
    state_dir = Path(tempfile.mkdtemp(prefix="stoker-serve-"))
    log_path = state_dir / "cluster.log"
    cluster = LocalCluster(
        state_dir=state_dir,
        http_port=int(os.environ.get("STOKER_HTTP_PORT", IngressConfig.port)),
        grpc_port=0,
        log=log_path.open("a"),
    )
    print(f"No stoker cluster is running; starting a local one for this session (logs: {log_path})", flush=True)
    cluster.start()
    client_config.announce_serve_cluster(cluster.scheduler_address, cluster.workspace_token)
    return ClientConfig(scheduler=cluster.scheduler_address, token=cluster.workspace_token), cluster


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


async def _requests(outbox: asyncio.Queue[pb.ServeRequest]) -> AsyncIterator[pb.ServeRequest]:
    while True:
        yield await outbox.get()


async def _watch(
    ref: AppRef, source: Source, environment: str, outbox: asyncio.Queue[pb.ServeRequest], loaded: bytes
) -> None:
    """Send a new definition whenever a Python file under the app's import root changes.

    The watcher also yields every half second without changes; then the app file's content is
    compared with what was last loaded, so a save made while the watcher was starting is not lost.
    """
    watching = False
    async for changes in watchfiles.awatch(
        source.root,
        watch_filter=watchfiles.PythonFilter(),
        debounce=400,
        step=30,
        rust_timeout=500,
        yield_on_timeout=True,
    ):
        if not watching:
            watching = True
            print(f"Serving {ref.short}; edits reload it. Ctrl-C stops it.", flush=True)
        current = await asyncio.to_thread(_read, source.path)
        if not changes and current == loaded:
            continue
        loaded = current
        try:
            definition = await asyncio.to_thread(load_definition, ref)
        except AppFileError as exc:
            print(
                f"{exc.details}\nReload failed: {ref.short} could not be loaded; the previous version keeps serving.",
                file=sys.stderr,
                flush=True,
            )
            continue
        outbox.put_nowait(pb.ServeRequest(app=definition, environment=environment))


async def _serve(ref: AppRef, source: Source, environment: str, cluster: ClientConfig) -> int:
    loaded = await asyncio.to_thread(_read, source.path)
    definition = await asyncio.to_thread(load_definition, ref)
    outbox: asyncio.Queue[pb.ServeRequest] = asyncio.Queue()
    outbox.put_nowait(pb.ServeRequest(app=definition, environment=environment))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with scheduler_aio_stub(cluster) as (stub, metadata):
        call = stub.Serve(_requests(outbox), metadata=metadata)
        watcher: asyncio.Task[None] | None = None

        async def read() -> None:
            nonlocal watcher
            async for response in call:
                if response.WhichOneof("kind") == "log":
                    print(format_line(response.log), flush=True)
                    continue
                if response.WhichOneof("kind") == "rejected":
                    print(f"Reload refused: {response.rejected}", file=sys.stderr, flush=True)
                    continue
                if response.WhichOneof("kind") == "build_output":
                    print(response.build_output, flush=True)
                    continue
                print_endpoints(response.deployed)
                print_warnings(response.deployed)
                if watcher is None:
                    watcher = asyncio.create_task(_watch(ref, source, environment, outbox, loaded), name="watch")
                else:
                    print(f"Reloaded {ref.short} (version {response.deployed.version})", flush=True)

        reader = asyncio.create_task(read(), name="serve-stream")
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (watcher, stopper):
            if task is not None:
                task.cancel()
        if reader.done():
            with rpc_errors():
                reader.result()
            print("The cluster ended this serve session.", file=sys.stderr)
            return 1
        call.cancel()
        reader.cancel()
        print("Stopped serving; the app is gone.", flush=True)
        return 0


def serve(ref: AppRef, environment: str) -> int:
    source = locate(ref)
    load_definition(ref)  # fail fast on a broken file, before starting any cluster
    target, cluster = find_or_start_cluster()
    try:
        return asyncio.run(_serve(ref, source, environment, target))
    finally:
        stop_own_cluster(cluster)


def stop_own_cluster(cluster: LocalCluster | None) -> None:
    """Stop the embedded cluster find_or_start_cluster() started, if it did."""
    if cluster is not None:
        client_config.withdraw_serve_cluster()
        cluster.stop()
        shutil.rmtree(cluster.state_dir, ignore_errors=True)
