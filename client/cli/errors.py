"""How a command ends on an error its user can act on: `Error: <message>` on stderr and exit
code 1, not a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from client.appfile import AppFileError
from client.exceptions import Error

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, details: str = "") -> typer.Exit:
    """Print `details` (a traceback the user needs), then the error line; raise what it returns."""
    if details:
        print(details, file=sys.stderr)
    print(f"Error: {message}", file=sys.stderr)
    return typer.Exit(1)


def reports_errors(*also: type[Exception], app_file_outcome: str = "") -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Wrap a command so that a client `Error` (and any of `also`) ends it through `fail`. An app
    file that cannot be loaded prints its traceback first, then says so, and `app_file_outcome`
    (what that meant for the command) when given."""

    reported: tuple[type[Exception], ...] = (Error, *also)

    def wrap(command: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(command)  # typer reads the options from the wrapped signature
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return command(*args, **kwargs)
            except AppFileError as exc:
                raise fail(f"{exc}; {app_file_outcome}." if app_file_outcome else f"{exc}.", exc.details) from None
            except reported as exc:
                raise fail(str(exc)) from None

        return run

    return wrap
