"""The developers' commands: `stoker deploy`, `serve` and `status`, and `stoker app list|stop|logs`."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer

from client.cli.errors import reports_errors
from client.cli.up import ClusterError

AppRefArgument = Annotated[
    str, typer.Argument(metavar="APP_REF", help="The app file (FILE.py, or FILE.py::app to pick its App variable).")
]
ModuleMode = Annotated[
    bool, typer.Option("-m", help="APP_REF is a module (package.module[::app]) in the current directory, not a file.")
]
Environment = Annotated[str, typer.Option("--env", "-e", envvar="STOKER_ENVIRONMENT", help="Environment name.")]


@reports_errors(app_file_outcome="nothing was deployed")
def deploy(app_ref: AppRefArgument, env: Environment = "", m: ModuleMode = False) -> None:
    """Deploy an app: it stays until stopped, across cluster restarts."""
    from client import config as client_config
    from client.app_ref import parse_ref
    from client.cli.deploy import deploy as do_deploy
    from client.cli.serve import print_endpoints, print_warnings

    ref = parse_ref(app_ref, m)
    deployed = do_deploy(ref, env, build_output=lambda line: print(line, flush=True))
    print_endpoints(deployed)
    print_warnings(deployed)
    print(f"Deployed {ref.short} as version {deployed.version}.", flush=True)
    cfg = client_config.load()
    if cfg is not None and cfg.serve_pid:
        print(
            f"Note: this cluster is the one `stoker serve` (pid {cfg.serve_pid}) started for itself; the app "
            "goes when that serve exits. Run `stoker up` for a cluster that lasts.",
            file=sys.stderr,
        )


@reports_errors(ClusterError)
def serve(app_ref: AppRefArgument, env: Environment = "", m: ModuleMode = False) -> None:
    """Serve an app while this command runs, reloading it when its files change."""
    from client.app_ref import parse_ref
    from client.cli.serve import serve as do_serve

    raise typer.Exit(do_serve(parse_ref(app_ref, m), env))


@reports_errors()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the scheduler's full StatusResponse as JSON.")] = False,
) -> None:
    """Show workers and their GPUs, and every function's containers, in-flight inputs and queue."""
    from client.cli.status import fetch_status, format_status, to_json

    response = fetch_status()
    print(to_json(response) if as_json else format_status(response))


@reports_errors()
def app_list() -> None:
    """List deployed and served apps."""
    from client.cli.deploy import format_apps, list_apps

    print(format_apps(list_apps()))


@reports_errors()
def app_stop(name: str, env: Environment = "") -> None:
    """Stop a deployed app and its containers."""
    from client.cli.deploy import stop_app

    stop_app(name, env)
    print(f"Stopped app {name}.")


@reports_errors()
def app_logs(
    name: str,
    env: Environment = "",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
    tail: Annotated[int, typer.Option(min=0, help="Print at most this many recent lines first; 0: all kept.")] = 0,
) -> None:
    """Print what the app's containers wrote (stdout and stderr), secrets hidden."""
    from client.cli.logs import app_logs as read_logs
    from client.cli.logs import format_line

    interrupted = False

    def interrupt(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True  # Ctrl-C: how --follow ends, quietly and without a traceback
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second one does not wait

    signal.signal(signal.SIGINT, interrupt)
    for line in read_logs(name, env, follow, tail, stopped=lambda: interrupted):
        print(format_line(line), flush=True)
