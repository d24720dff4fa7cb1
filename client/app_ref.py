"""App references, as Modal's CLI takes them: `FILE.py`, `FILE.py::name` and, with `-m`,
`package.module[::name]`; and where the code they name lives (the file, the folder that is the
root of its imports, its module name), found without running any of it.

A file inside a package (its folder has an `__init__.py`) is a module of that package: the root
is the folder above the outermost package, so `from . import helpers` and `from pkg import
helpers` work, in the CLI and in containers alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path

from client.exceptions import InvalidError


@dataclass(frozen=True)
class AppRef:
    """What the user named: a file or (with `-m`) a module, and an optional object path inside
    it (an App variable; for `run`, an entrypoint or function, or `app_var.name`)."""

    file_or_module: str
    module_mode: bool = False
    object_path: str = ""

    def __str__(self) -> str:
        text = self.file_or_module + (f"::{self.object_path}" if self.object_path else "")
        return f"-m {text}" if self.module_mode else text

    @property
    def short(self) -> str:
        """The reference with a file named by its base name, for messages (`app.py`, `app.py::b`)."""
        if self.module_mode:
            return str(self)
        return os.path.basename(self.file_or_module) + (f"::{self.object_path}" if self.object_path else "")

    def argv(self) -> list[str]:
        """The reference as command-line arguments, for a child process to parse again."""
        text = self.file_or_module + (f"::{self.object_path}" if self.object_path else "")
        return ["-m", text] if self.module_mode else [text]


@dataclass(frozen=True)
class Source:
    """Where the referenced code is: its file, the root of its imports, its module name."""

    path: Path
    root: Path
    module: str

    @property
    def entry(self) -> str:
        """The file, relative to the root: the app's entry in its code bundle."""
        return self.path.relative_to(self.root).as_posix()


def parse_ref(text: str, module_mode: bool = False) -> AppRef:
    if not text:
        raise InvalidError("name an app file (FILE.py, FILE.py::app) or, with -m, a module")
    if text.find("::") > 0:
        file_or_module, object_path = text.split("::", 1)
        if not object_path:
            raise InvalidError(f"{text!r}: nothing follows '::'; name an App, function or entrypoint")
    elif text.find(":") > 1:  # index 1 is a Windows drive letter's colon
        raise InvalidError(f"invalid app reference {text!r}: did you mean '::' instead of ':'?")
    else:
        file_or_module, object_path = text, ""
    if not module_mode and not file_or_module.endswith(".py"):
        raise InvalidError(f"{file_or_module!r} is not a .py file; to import it as a module, use -m {file_or_module}")
    return AppRef(file_or_module, module_mode, object_path)


def locate(ref: AppRef) -> Source:
    """Where the code `ref` names lives; InvalidError when there is no such file or module."""
    return _locate_module(ref.file_or_module) if ref.module_mode else locate_file(Path(ref.file_or_module))


def locate_file(path: Path) -> Source:
    path = path.resolve()
    if not path.is_file():
        raise InvalidError(f"app file {path} does not exist")
    if path.suffix != ".py":
        raise InvalidError(f"app file {path} is not a .py file")
    if "." in path.stem:
        raise InvalidError(f"app file name {path.name!r} has a '.' before .py; a module's name cannot hold one")
    parts = [] if path.stem == "__init__" else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return Source(path=path, root=folder, module=".".join(parts))


def in_bundle(entry: Path, root: Path) -> Source:
    """The app's entry inside a container: a file of the code bundle at `root`, whose module name
    follows from its place there (`pkg/app.py` is `pkg.app`), as it did where it was deployed from."""
    path = entry.resolve()
    relative = path.relative_to(root.resolve()).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return Source(path=path, root=root.resolve(), module=".".join(parts))


def _locate_module(name: str) -> Source:
    """The module `name` in the current directory (what `-m` imports from), found without
    importing any of it: each package's folder is searched for the next part."""
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        raise InvalidError(f"{name!r} is not a module name (dotted Python identifiers, as `python -m` takes)")
    root = Path(os.getcwd()).resolve()
    search: list[str] | None = [str(root)]
    spec = None
    for i in range(len(parts)):
        spec = PathFinder.find_spec(".".join(parts[: i + 1]), search)
        if spec is None:
            raise InvalidError(
                f"no module named {'.'.join(parts[: i + 1])!r} in {root} (-m imports from the current directory)"
            )
        search = list(spec.submodule_search_locations or [])
    assert spec is not None
    if spec.origin is None or not spec.origin.endswith(".py"):
        what = spec.origin or "a namespace package"
        raise InvalidError(f"module {name!r} is not a Python source file (it is {what})")
    return Source(path=Path(spec.origin).resolve(), root=root, module=name)
