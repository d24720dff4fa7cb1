"""`LocalEntrypoint`: what `@app.local_entrypoint()` makes of a function. `stoker run` calls it on
the caller's machine while its app runs, ephemerally, on the cluster (client/cli/run.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from client.app import App


class LocalEntrypoint:
    """A function of an app that runs locally, in the `stoker run` process; its `.remote()`
    calls go to the app it belongs to."""

    def __init__(self, app: App, name: str, raw_f: Callable[..., Any]) -> None:
        self.app = app
        self.name = name
        self.raw_f = raw_f
        self.__doc__ = raw_f.__doc__

    def __repr__(self) -> str:
        return f"<LocalEntrypoint {self.app.name}.{self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.raw_f(*args, **kwargs)
