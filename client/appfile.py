"""App files: import one (with `import modal` resolving to stoker) and find its functions, as the
container runtime does; and turn one into an AppDefinition, its functions' specs and a bundle of
its code, as deploy and serve do.

Which app: an app reference (client/app_ref.py) names a file or module and, optionally, the App
variable in it. For a deploy the file is imported in a fresh child process
(`python -m client.appfile [-m] REF`), so a broken file cannot hurt the CLI and every live reload
sees the file as it is now.
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
from client.app_ref import AppRef, Source, locate, locate_file, parse_ref
from client.exceptions import InvalidError
from client.function import Function
from client.image import local_blob
from protos import stoker_pb2 as pb


def alias_modal() -> None:
    """Make `import modal` give stoker's SDK, so app files written for Modal run unchanged, and
    `import modal.functions`, `from modal.exception import ...` the same objects."""
    sys.modules.setdefault("modal", client)
    modal_names.alias_modules(client)


def import_app_file(path: Path) -> ModuleType:
    """Import the app file (as a module of its package, when it is in one)."""
    return import_source(locate_file(path))


def import_source(source: Source) -> ModuleType:
    """Import the referenced module, the root of its imports first on sys.path."""
    alias_modal()
    root = str(source.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    if "." in source.module:
        return importlib.import_module(source.module)  # its packages first, so relative imports work
    # A top-level file is imported from its path, so that a name that is taken (an app file
    # called json.py) is still the app file.
    spec = importlib.util.spec_from_file_location(source.module, source.path)
    if spec is None or spec.loader is None:
        raise InvalidError(f"cannot import {source.path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[source.module] = module
    spec.loader.exec_module(module)
    return module


def module_apps(module: ModuleType) -> dict[str, App]:
    """The module's App variables, by name."""
    return {name: value for name, value in vars(module).items() if isinstance(value, App)}


def find_app(module: ModuleType, variable: str = "", name: str = "") -> App:
    """The app the module defines: the App variable `variable` when given; else the module's
    `app`, or its only App; else the one App named `name` (how a container finds the app that
    was deployed from a file that has several)."""
    apps = module_apps(module)
    if variable:
        if variable not in apps:
            found = ", ".join(sorted(apps)) or "none"
            raise InvalidError(f"{module.__file__} has no App variable {variable!r} (its App variables: {found})")
        return apps[variable]
    named = [a for a in apps.values() if name and a.name == name]
    if len(named) == 1 and len(apps) > 1:
        return named[0]
    candidate = apps.get("app")
    if candidate is not None:
        return candidate
    if len(apps) == 1:
        return next(iter(apps.values()))
    if not apps:
        registered = [a for a in created_apps if a.registered_functions or a.registered_classes]
        if len(registered) == 1:
            return registered[0]
    raise InvalidError(
        f"{module.__file__} must define exactly one stoker App (found {len(apps) or 'none'}); "
        "name the one to use as FILE.py::variable"
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

    def __init__(self, what: AppRef | Path, details: str) -> None:
        super().__init__(f"{what} could not be loaded")
        self.what = what
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


def describe(app: App, module: ModuleType, source: Source) -> pb.AppDefinition:
    """The AppDefinition of an app this process has imported: its functions and classes, and its code."""
    if not app.registered_functions and not app.registered_classes:
        raise InvalidError(
            f"{source.path} defines no functions: decorate one with @app.function() or a class with @app.cls()"
        )
    name = app.name or source.path.stem
    namesakes = [a for a in module_apps(module).values() if a is not app and (a.name or source.path.stem) == name]
    if namesakes:
        # Containers tell the file's Apps apart by name.
        raise InvalidError(f"{source.path} defines more than one App named {name!r}; give each its own name")
    functions = [
        *(f.to_proto() for f in app.registered_functions.values()),
        *(c.to_proto() for c in app.registered_classes.values()),
    ]
    return pb.AppDefinition(
        name=name,
        entry=source.entry,
        functions=functions,
        bundle=_bundle(source.root, source.path),
        image_blobs=_image_blobs(functions),
    )


def _image_blobs(functions: list[pb.FunctionSpec]) -> list[pb.ImageBlob]:
    """The local files the functions' images add, which the deploy carries to the workers."""
    digests = {s.add_files.digest for f in functions for s in f.image.steps if s.HasField("add_files")}
    return [pb.ImageBlob(digest=d, data=local_blob(d)) for d in sorted(digests)]


def build_definition(ref: AppRef) -> pb.AppDefinition:
    """Import the referenced app in this process and describe it."""
    source = locate(ref)
    module = import_source(source)
    return describe(find_app(module, ref.object_path), module, source)


def load_definition(ref: AppRef) -> pb.AppDefinition:
    """Describe the referenced app, importing it in a child process; AppFileError if it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "client.appfile", *ref.argv()], capture_output=True, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise AppFileError(ref, result.stderr.decode(errors="replace").rstrip())
    return pb.AppDefinition.FromString(result.stdout)


def main() -> None:
    args = sys.argv[1:]
    module_mode = args[:1] == ["-m"]
    try:
        ref = parse_ref(args[-1], module_mode)
        if "." in ref.object_path:
            raise InvalidError(f"{ref.object_path!r} is not an App variable (name one without dots)")
        definition = build_definition(ref)
    except InvalidError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.stdout.buffer.write(definition.SerializeToString())


if __name__ == "__main__":
    main()
