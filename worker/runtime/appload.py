"""Load a user's app file and find its functions, with `import modal` resolving to stoker."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import client
from client.app import App, created_apps
from client.exceptions import InvalidError
from client.function import Function


def alias_modal() -> None:
    """Make `import modal` give stoker's SDK, so app files written for Modal run unchanged."""
    sys.modules.setdefault("modal", client)


def import_app_file(path: Path) -> ModuleType:
    """Import the app file as a module named after it, its folder first on sys.path."""
    path = path.resolve()
    if not path.is_file():
        raise InvalidError(f"app file {path} does not exist")
    if path.suffix != ".py":
        raise InvalidError(f"app file {path} is not a .py file")
    alias_modal()
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def find_app(module: ModuleType) -> App:
    """The app the file defines: the module's `app`, else its only App."""
    candidate = getattr(module, "app", None)
    if isinstance(candidate, App):
        return candidate
    apps = [a for a in vars(module).values() if isinstance(a, App)]
    if len(apps) == 1:
        return apps[0]
    if not apps:
        apps = [a for a in created_apps if a.registered_functions]
        if len(apps) == 1:
            return apps[0]
    raise InvalidError(
        f"{module.__file__} must define exactly one stoker App (found {len(apps)}); name the one to deploy `app`"
    )


def find_function(app: App, name: str) -> Function:
    try:
        return app.registered_functions[name]
    except KeyError:
        known = ", ".join(sorted(app.registered_functions)) or "none"
        raise InvalidError(f"app has no function {name!r} (it has: {known})") from None
