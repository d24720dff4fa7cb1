"""Turn an app file into an AppDefinition: its functions' specs and a bundle of its code.

The file is imported in a fresh child process (`python -m client.appfile FILE`), so a broken
file cannot hurt the CLI and every live reload sees the file as it is now.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

from client.exceptions import InvalidError
from protos import stoker_pb2 as pb


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
    from worker.runtime.appload import find_app, import_app_file

    path = path.resolve()
    app = find_app(import_app_file(path))
    if not app.registered_functions:
        raise InvalidError(f"{path} defines no functions: decorate one with @app.function()")
    return pb.AppDefinition(
        name=app.name or path.stem,
        entry=path.name,
        functions=[f.to_proto() for f in app.registered_functions.values()],
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
