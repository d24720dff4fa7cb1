"""App files: import one (with `import modal` resolving to stoker) and find its functions, as the
container runtime does; and turn one into an AppDefinition, its functions' specs and a bundle of
its code, as deploy and serve do.

For a deploy the file is imported in a fresh child process (`python -m client.appfile FILE`), so
a broken file cannot hurt the CLI and every live reload sees the file as it is now.
"""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import client
from client import modal_names
from client.app import App, created_apps
from client.exceptions import InvalidError
from client.function import Function
from protos import stoker_pb2 as pb


def alias_modal() -> None:
    """Make `import modal` give stoker's SDK, so app files written for Modal run unchanged, and
    `import modal.functions`, `from modal.exception import ...` the same objects."""
    sys.modules.setdefault("modal", client)
    modal_names.alias_modules(client)


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
        apps = [a for a in created_apps if a.registered_functions or a.registered_classes]
        if len(apps) == 1:
            return apps[0]
    raise InvalidError(
        f"{module.__file__} must define exactly one stoker App (found {len(apps)}); name the one to deploy `app`"
    )


def find_function(app: App, name: str) -> Function | client.cls.Cls:
    """The function or class `name` of the app."""
    found = app.registered_functions.get(name) or app.registered_classes.get(name)
    if found is None:
        known = ", ".join(sorted([*app.registered_functions, *app.registered_classes])) or "none"
        raise InvalidError(f"app has no function {name!r} (it has: {known})")
    return found


class AppFileError(Exception):
    """The app file could not be loaded; `details` holds the Python traceback."""

    def __init__(self, path: Path, details: str) -> None:
        super().__init__(f"{path} could not be loaded")
        self.path = path
        self.details = details


def _is_local(path: Path, root: Path) -> bool:
    return path.is_relative_to(root) and not any(
        part in ("site-packages", "dist-packages") or part.startswith(".") for part in path.relative_to(root).parts
    )


def _bundle(root: Path, entry: Path) -> bytes:
    """A zip of the app file and the modules it imported from its own folder."""
    files = {entry}
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and file.endswith(".py"):
            path = Path(file).resolve()
            if _is_local(path, root):
                files.add(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())  # fixed timestamps: same code, same hash
    return buffer.getvalue()


def build_definition(path: Path) -> pb.AppDefinition:
    """Import the app file in this process and describe it."""
    path = path.resolve()
    app = find_app(import_app_file(path))
    if not app.registered_functions and not app.registered_classes:
        raise InvalidError(f"{path} defines no functions: decorate one with @app.function() or a class with @app.cls()")
    return pb.AppDefinition(
        name=app.name or path.stem,
        entry=path.name,
        functions=[
            *(f.to_proto() for f in app.registered_functions.values()),
            *(c.to_proto() for c in app.registered_classes.values()),
        ],
        bundle=_bundle(path.parent, path),
    )


def load_definition(path: Path) -> pb.AppDefinition:
    """Describe the app file, importing it in a child process; AppFileError if it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "client.appfile", str(path)], capture_output=True, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise AppFileError(path, result.stderr.decode(errors="replace").rstrip())
    return pb.AppDefinition.FromString(result.stdout)


def main() -> None:
    try:
        definition = build_definition(Path(sys.argv[1]))
    except InvalidError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.stdout.buffer.write(definition.SerializeToString())


if __name__ == "__main__":
    main()
