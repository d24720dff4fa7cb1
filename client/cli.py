"""The `stoker` command line."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

# Workers start containers while gRPC threads run; grpc's fork handlers only warn about that.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

from client.exceptions import Error

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Self-hosted, Modal-style web endpoints.")
app_cli = typer.Typer(no_args_is_help=True, help="Deployed and served apps.")
cli.add_typer(app_cli, name="app")
secret_cli = typer.Typer(no_args_is_help=True, help="Secrets: environment variables for containers.")
cli.add_typer(secret_cli, name="secret")
token_cli = typer.Typer(no_args_is_help=True, help="Proxy-auth tokens for requires_proxy_auth endpoints.")
cli.add_typer(token_cli, name="token")

DEFAULT_STATE = Path.home() / ".stoker" / "state"
DEFAULT_WORK_DIR = Path.home() / ".stoker" / "worker"
LogLevel = Annotated[str, typer.Option(envvar="STOKER_LOG_LEVEL", help="debug, info, warning or error.")]
PortFile = Annotated[Path | None, typer.Option(envvar="STOKER_PORT_FILE", help="Write the bound port here as JSON.")]
ClusterSecret = Annotated[
    str, typer.Option(envvar="STOKER_CLUSTER_SECRET", help="Shared by the cluster's daemons. Prefer the env var.")
]
Environment = Annotated[str, typer.Option("--env", "-e", envvar="STOKER_ENVIRONMENT", help="Environment name.")]


def _fail(message: str, details: str = "") -> typer.Exit:
    if details:
        print(details, file=sys.stderr)
    print(f"Error: {message}", file=sys.stderr)
    return typer.Exit(1)


# ---------------------------------------------------------------- daemons


@cli.command()
def scheduler(
    host: Annotated[str, typer.Option(envvar="STOKER_SCHEDULER_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="STOKER_SCHEDULER_PORT", help="0 picks a free port.")] = 7700,
    state_dir: Annotated[Path, typer.Option(envvar="STOKER_STATE_DIR")] = DEFAULT_STATE,
    workspace: Annotated[str, typer.Option(envvar="STOKER_WORKSPACE")] = "ws",
    domain: Annotated[str, typer.Option(envvar="STOKER_DOMAIN", help="Endpoints live under it.")] = "localhost",
    web_scheme: Annotated[str, typer.Option(envvar="STOKER_WEB_SCHEME")] = "http",
    web_port: Annotated[int, typer.Option(envvar="STOKER_WEB_PORT", help="Port in URLs; 0: the ingress's.")] = 0,
    queue_timeout: Annotated[float, typer.Option(envvar="STOKER_QUEUE_TIMEOUT")] = 60.0,
    heartbeat_timeout: Annotated[
        float, typer.Option(envvar="STOKER_HEARTBEAT_TIMEOUT", help="Drop a worker silent this long.")
    ] = 15.0,
    port_file: PortFile = None,
    tls_cert: Annotated[Path | None, typer.Option(envvar="STOKER_TLS_CERT", help="Serve gRPC over TLS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(envvar="STOKER_TLS_KEY")] = None,
    cluster_secret: Annotated[
        str, typer.Option(envvar="STOKER_CLUSTER_SECRET", help="Default: kept in the state dir.")
    ] = "",
    log_level: LogLevel = "info",
) -> None:
    """Run the scheduler: the control plane."""
    from client.daemon import configure_logging, run
    from scheduler.config import SchedulerConfig
    from scheduler.server import SchedulerServer

    configure_logging(log_level)
    run(
        SchedulerServer(
            SchedulerConfig(
                host=host,
                port=port,
                state_dir=state_dir,
                workspace=workspace,
                domain=domain,
                web_scheme=web_scheme,
                web_port=web_port,
                queue_timeout=queue_timeout,
                heartbeat_timeout=heartbeat_timeout,
                port_file=port_file,
                tls_cert=tls_cert,
                tls_key=tls_key,
                cluster_secret=cluster_secret,
            )
        )
    )


@cli.command()
def worker(
    scheduler: Annotated[str, typer.Option(envvar="STOKER_SCHEDULER")] = "127.0.0.1:7700",
    work_dir: Annotated[Path, typer.Option(envvar="STOKER_WORK_DIR")] = DEFAULT_WORK_DIR,
    worker_id: Annotated[str, typer.Option(envvar="STOKER_WORKER_ID", help="Default: the host name.")] = "",
    bind_host: Annotated[str, typer.Option(envvar="STOKER_BIND_HOST", help="Containers listen here.")] = "127.0.0.1",
    advertise_host: Annotated[str, typer.Option(envvar="STOKER_ADVERTISE_HOST")] = "127.0.0.1",
    gpus: Annotated[str, typer.Option(envvar="STOKER_WORKER_GPUS", help="Declare GPUs: 'A10G:24,H100:80'.")] = "",
    fork: Annotated[bool, typer.Option(envvar="STOKER_WORKER_FORK", help="Fork containers from a template.")] = True,
    image_dir: Annotated[
        Path | None, typer.Option(envvar="STOKER_IMAGE_DIR", help="Where images are built. Default: in the work dir.")
    ] = None,
    uv_cache_dir: Annotated[str, typer.Option(envvar="STOKER_UV_CACHE_DIR", help="uv's cache for image builds.")] = "",
    image_build_timeout: Annotated[
        float, typer.Option(min=1, envvar="STOKER_IMAGE_BUILD_TIMEOUT", help="Seconds one image build may take.")
    ] = 600.0,
    cluster_secret: ClusterSecret = "",
    log_level: LogLevel = "info",
) -> None:
    """Run a worker: containers and GPUs of this machine."""
    from client.daemon import configure_logging, run
    from worker.config import WorkerConfig
    from worker.server import WorkerServer

    configure_logging(log_level)
    config = WorkerConfig(
        scheduler=scheduler,
        work_dir=work_dir,
        bind_host=bind_host,
        advertise_host=advertise_host,
        gpus=gpus,
        fork_containers=fork,
        image_dir=image_dir,
        uv_cache_dir=uv_cache_dir,
        image_build_timeout=image_build_timeout,
        cluster_secret=cluster_secret,
    )
    if worker_id:
        config = replace(config, worker_id=worker_id)
    run(WorkerServer(config))


@cli.command()
def ingress(
    host: Annotated[str, typer.Option(envvar="STOKER_INGRESS_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="STOKER_HTTP_PORT", help="0 picks a free port.")] = 8000,
    scheduler: Annotated[str, typer.Option(envvar="STOKER_SCHEDULER")] = "127.0.0.1:7700",
    port_file: PortFile = None,
    cluster_secret: ClusterSecret = "",
    rate_limit_rps: Annotated[
        float,
        typer.Option(
            min=0.0,
            envvar="STOKER_RATE_LIMIT_RPS",
            help="Requests/s per workspace, cluster-wide; bursts of 5 s worth. 0: off.",
        ),
    ] = 200.0,
    max_body_bytes: Annotated[
        int,
        typer.Option(min=1, envvar="STOKER_MAX_BODY_BYTES", help="Largest request body; past it, 413."),
    ] = 4 * 1024**3,
    max_header_bytes: Annotated[
        int,
        typer.Option(min=1, envvar="STOKER_MAX_HEADER_BYTES", help="Largest request line and headers; past it, 431."),
    ] = 64 * 1024,
    header_timeout: Annotated[
        float,
        typer.Option(min=0.001, envvar="STOKER_HEADER_TIMEOUT", help="Seconds for a whole request head to arrive."),
    ] = 10.0,
    tls_cert: Annotated[str | None, typer.Option(envvar="STOKER_INGRESS_TLS_CERT", help="Serve HTTPS.")] = None,
    tls_key: Annotated[str | None, typer.Option(envvar="STOKER_INGRESS_TLS_KEY")] = None,
    slot_linger: Annotated[
        float,
        typer.Option(
            min=0.0,
            envvar="STOKER_INGRESS_SLOT_LINGER",
            help="Seconds a container slot is held for the next request to the same endpoint, "
            "skipping the scheduler. 0: ask the scheduler for every request.",
        ),
    ] = 0.05,
    log_level: LogLevel = "info",
) -> None:
    """Run an ingress: the HTTP and WebSocket front door."""
    from client.daemon import configure_logging, run
    from ingress.config import IngressConfig
    from ingress.server import IngressServer

    configure_logging(log_level)
    run(
        IngressServer(
            IngressConfig(
                host=host,
                port=port,
                scheduler=scheduler,
                port_file=port_file,
                cluster_secret=cluster_secret,
                rate_limit_rps=rate_limit_rps,
                max_body_bytes=max_body_bytes,
                max_header_bytes=max_header_bytes,
                header_timeout=header_timeout,
                tls_cert=tls_cert,
                tls_key=tls_key,
                slot_linger=slot_linger,
            )
        )
    )


@cli.command()
def up(
    http_port: Annotated[int, typer.Option(envvar="STOKER_HTTP_PORT")] = 8000,
    grpc_port: Annotated[int, typer.Option(envvar="STOKER_SCHEDULER_PORT")] = 7700,
    state_dir: Annotated[Path, typer.Option(envvar="STOKER_STATE_DIR")] = DEFAULT_STATE,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes, each its own node.")] = 1,
    write_config: Annotated[bool, typer.Option(help="Point this user's CLI at the new cluster.")] = True,
) -> None:
    """Run scheduler, worker(s) and ingress on this machine until interrupted."""
    from client import config as client_config
    from client.up import ClusterError, LocalCluster, wait_for_signal

    cluster = LocalCluster(state_dir=state_dir, http_port=http_port, grpc_port=grpc_port, workers=workers)
    try:
        cluster.start()
    except ClusterError as exc:
        raise _fail(str(exc)) from None
    try:
        if write_config:
            path = client_config.save(cluster.scheduler_address, cluster.workspace_token)
            print(f"Wrote {path}", flush=True)
        print(f"scheduler: {cluster.scheduler_address}", flush=True)
        print(f"ready: {cluster.http_url}", flush=True)
        code = wait_for_signal(cluster)
    finally:
        cluster.stop()
    raise typer.Exit(code)


# ---------------------------------------------------------------- developers


@cli.command()
def deploy(
    file: Annotated[Path, typer.Argument(help="The app file.")],
    env: Environment = "",
) -> None:
    """Deploy an app: it stays until stopped, across cluster restarts."""
    from client import config as client_config
    from client.appfile import AppFileError
    from client.deploy import deploy as do_deploy
    from client.serve import print_endpoints

    try:
        deployed = do_deploy(file, env, build_output=lambda line: print(line, flush=True))
    except AppFileError as exc:
        raise _fail(f"{file} could not be loaded; nothing was deployed.", exc.details) from None
    except Error as exc:
        raise _fail(str(exc)) from None
    print_endpoints(deployed)
    print(f"Deployed {file.name} as version {deployed.version}.", flush=True)
    cfg = client_config.load()
    if cfg is not None and cfg.serve_pid:
        print(
            f"Note: this cluster is the one `stoker serve` (pid {cfg.serve_pid}) started for itself; the app "
            "goes when that serve exits. Run `stoker up` for a cluster that lasts.",
            file=sys.stderr,
        )


@cli.command()
def serve(
    file: Annotated[Path, typer.Argument(help="The app file.")],
    env: Environment = "",
) -> None:
    """Serve an app while this command runs, reloading it when its files change."""
    from client.appfile import AppFileError
    from client.serve import serve as do_serve
    from client.up import ClusterError

    try:
        code = do_serve(file, env)
    except AppFileError as exc:
        raise _fail(f"{file} could not be loaded.", exc.details) from None
    except (Error, ClusterError) as exc:
        raise _fail(str(exc)) from None
    raise typer.Exit(code)


@app_cli.command("list")
def app_list() -> None:
    """List deployed and served apps."""
    from client.deploy import format_apps, list_apps

    try:
        print(format_apps(list_apps()))
    except Error as exc:
        raise _fail(str(exc)) from None


@cli.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the scheduler's full StatusResponse as JSON.")] = False,
) -> None:
    """Show workers and their GPUs, and every function's containers, in-flight inputs and queue."""
    from client.status import fetch_status, format_status, to_json

    try:
        response = fetch_status()
    except Error as exc:
        raise _fail(str(exc)) from None
    print(to_json(response) if as_json else format_status(response))


@app_cli.command("stop")
def app_stop(name: str, env: Environment = "") -> None:
    """Stop a deployed app and its containers."""
    from client.deploy import stop_app

    try:
        stop_app(name, env)
    except Error as exc:
        raise _fail(str(exc)) from None
    print(f"Stopped app {name}.")


@app_cli.command("logs")
def app_logs(
    name: str,
    env: Environment = "",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
    tail: Annotated[int, typer.Option(min=0, help="Print at most this many recent lines first; 0: all kept.")] = 0,
) -> None:
    """Print what the app's containers wrote (stdout and stderr), secrets hidden."""
    from client.logs import app_logs as read_logs
    from client.logs import format_line

    interrupted = False

    def interrupt(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True  # Ctrl-C: how --follow ends, quietly and without a traceback
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second one does not wait

    signal.signal(signal.SIGINT, interrupt)
    try:
        for line in read_logs(name, env, follow, tail, stopped=lambda: interrupted):
            print(format_line(line), flush=True)
    except Error as exc:
        raise _fail(str(exc)) from None


@secret_cli.command("create")
def secret_create(
    name: str,
    pairs: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE pairs.")] = None,
    from_dotenv: Annotated[Path | None, typer.Option("--from-dotenv", help="Read KEY=VALUE lines from a file.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a secret of that name.")] = False,
) -> None:
    """Create a secret from KEY=VALUE pairs (and/or a .env file). Values are never printed."""
    from client.secrets import create, parse_dotenv, parse_pairs

    try:
        values = parse_dotenv(from_dotenv) if from_dotenv else {}
        values.update(parse_pairs(pairs or []))
        create(name, values, force)
    except (Error, OSError) as exc:
        raise _fail(str(exc)) from None
    print(f"Created secret {name} with keys: {', '.join(sorted(values))}")


@secret_cli.command("list")
def secret_list() -> None:
    """List secrets and their keys (never their values)."""
    from client.secrets import format_secrets, list_secrets

    try:
        print(format_secrets(list_secrets()))
    except Error as exc:
        raise _fail(str(exc)) from None


@secret_cli.command("delete")
def secret_delete(name: str) -> None:
    """Delete a secret. Running containers keep the values they started with."""
    from client.secrets import delete

    try:
        delete(name)
    except Error as exc:
        raise _fail(str(exc)) from None
    print(f"Deleted secret {name}.")


@token_cli.command("create")
def token_create() -> None:
    """Create a proxy-auth token; its secret is shown this once."""
    from client.tokens import create

    try:
        token = create()
    except Error as exc:
        raise _fail(str(exc)) from None
    print(f"Token key: {token.key}")
    print(f"Token secret: {token.secret}")
    print("Send them as the headers Modal-Key and Modal-Secret (or Authorization: Bearer <key>.<secret>).")
    print("The secret is not stored and cannot be shown again.")


@token_cli.command("list")
def token_list() -> None:
    """List proxy-auth tokens (keys only)."""
    from client.tokens import format_tokens, list_tokens

    try:
        print(format_tokens(list_tokens()))
    except Error as exc:
        raise _fail(str(exc)) from None


@token_cli.command("revoke")
def token_revoke(key: str) -> None:
    """Revoke a proxy-auth token: every ingress refuses it within a second."""
    from client.tokens import revoke

    try:
        revoke(key)
    except Error as exc:
        raise _fail(str(exc)) from None
    print(f"Revoked {key}.")


def main() -> None:
    cli()
