"""`stoker run APP_REF [--param value ...]`, as Modal's `modal run`: import the app here, run it on
the cluster as an ephemeral app for as long as this command runs, and run a local entrypoint in
this process (its `.remote()` calls reach that ephemeral app) or call a function remotely and
print its result. The exit code is the entrypoint's: 0 when it returns, n for SystemExit(n), 1
(after its traceback) when it raises.

What follows APP_REF is parsed by a click command made once the app is imported, its options
from the parameters of what runs (`stoker run app.py --help` lists them).
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import traceback
from typing import Annotated, Any

import click
import typer

from client.cli.apps import Environment, ModuleMode
from client.cli.errors import fail
from client.cli.runnables import Runnable


def run(
    ctx: typer.Context,
    app_ref: Annotated[
        str,
        typer.Argument(
            metavar="APP_REF",
            help="FILE.py, FILE.py::name or (with -m) package.module[::name]; name: a local entrypoint, "
            "a function, or app_variable.name. Then the options of what runs (APP_REF --help lists them).",
        ),
    ],
    m: ModuleMode = False,
    env: Environment = "",
) -> None:
    """Run a local entrypoint here, or a function remotely, with its app live on the cluster."""
    command = _command(app_ref, m, env)
    command.main(args=list(ctx.args), prog_name=f"stoker run {app_ref}", standalone_mode=True)


def _command(app_ref: str, module_mode: bool, environment: str) -> click.Command:
    from client.app_ref import locate, parse_ref
    from client.appfile import describe, import_source
    from client.cli.run_options import options
    from client.cli.runnables import choose
    from client.exceptions import Error

    try:
        ref = parse_ref(app_ref, module_mode)
        source = locate(ref)
    except Error as exc:
        raise fail(str(exc)) from None
    try:
        module = import_source(source)
    except Exception:
        raise fail(f"{ref} could not be loaded", traceback.format_exc().rstrip()) from None
    try:
        runnable = choose(vars(module), ref.object_path, ref.file_or_module)
        params = options(runnable.raw_f)
        app = runnable.app
        definition = describe(app, module, source) if app.registered_functions else None
    except Error as exc:
        raise fail(str(exc)) from None

    def run_it(**kwargs: Any) -> None:
        from client.cli.run_session import run_with_app  # cluster machinery: only when it runs

        try:
            code = run_with_app(app, definition, environment, lambda: _invoke(runnable, kwargs))
        except Error as exc:
            raise fail(str(exc)) from None
        sys.exit(code)

    return click.Command(app_ref, params=list(params), callback=run_it, help=runnable.raw_f.__doc__)


def _invoke(runnable: Runnable, kwargs: dict[str, Any]) -> None:
    from client.entrypoint import LocalEntrypoint

    if isinstance(runnable, LocalEntrypoint):
        outcome = runnable.raw_f(**kwargs)
        if inspect.iscoroutine(outcome):
            asyncio.run(outcome)
        return
    result = runnable.remote(**kwargs)
    if result is not None:
        print(result, flush=True)
