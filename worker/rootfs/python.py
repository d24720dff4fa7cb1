"""A Python for an image whose base lacks the requested version: an interpreter found on the
worker (by `uv python find`, or under the --python-dir directories, pyenv's versions included),
copied into a layer under /usr/local with the shared libraries it needs that the image lacks.
Its own site-packages stay behind (they are the worker's packages); pip comes from ensurepip."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import uv

from worker.rootfs.inside import Inside, run_inside
from worker.rootfs.process import ImageBuildError, Output, run

# pyenv's versions, of the worker's user (its HOME may be another, for the daemons' own state).
_HOMES = dict.fromkeys([Path.home(), Path(pwd.getpwuid(os.getuid()).pw_dir)])
DEFAULT_PYTHON_DIRS = (*(home / ".pyenv" / "versions" for home in _HOMES), Path("/opt/python"))
_PROBE = "import json, sys; print(json.dumps([list(sys.version_info[:3]), sys.base_prefix]))"
_LDD_LINE = re.compile(r"^\s*(\S+) => (/\S+)")
_LIBRARY_DIRS = ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu", "usr/lib", "lib")
_LEFT_BEHIND = {"site-packages", "test", "idlelib", "tkinter", "turtledemo"}


@dataclass(frozen=True)
class Interpreter:
    version: tuple[int, int, int]
    prefix: Path  # a self-contained installation: bin/, lib/pythonX.Y

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def minor(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


def version_matches(requested: str, actual: tuple[int, ...]) -> bool:
    """Whether an interpreter of version `actual` satisfies `requested` ("3.11" or "3.11.7")."""
    if not requested:
        return True
    wanted = tuple(int(p) for p in requested.split("."))
    return wanted == tuple(actual[: len(wanted)])


async def find_interpreters(version: str, python_dirs: Sequence[Path]) -> list[Interpreter]:
    """The self-contained interpreters on this worker (the one matching `version` first, if uv
    finds one), each once."""
    candidates: list[str] = []
    uv_env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}
    try:
        found = await run([uv.find_uv_bin(), "python", "find", version], None, env=uv_env)
        candidates.append(found.splitlines()[-1].strip())
    except (ImageBuildError, IndexError):
        pass
    for directory in python_dirs:
        candidates += sorted(str(p) for p in directory.glob("*/bin/python3") if p.is_file())
    interpreters: dict[Path, Interpreter] = {}
    for candidate in candidates:
        try:
            probe = json.loads(await run([candidate, "-c", _PROBE], None, env={"PATH": os.defpath}))
        except (ImageBuildError, OSError, ValueError):
            continue
        prefix = Path(probe[1])
        # A system Python (/usr) is part of its system, not something one can copy.
        if str(prefix) in ("/usr", "/") or not (prefix / "lib" / f"python{probe[0][0]}.{probe[0][1]}").is_dir():
            continue
        interpreters.setdefault(prefix, Interpreter(tuple(probe[0]), prefix))
    return list(interpreters.values())


async def install_python(
    version: str,
    layer_dir: Path,
    scratch: Path,
    lower: list[Path],
    emit: Output,
    *,
    python_dirs: Sequence[Path] = DEFAULT_PYTHON_DIRS,
    available: str = "",
) -> dict[str, str]:
    """Copy a worker's Python `version` into `layer_dir` (on top of `lower`); what the layer
    records: the interpreter's path inside and its exact version. ImageBuildError, naming the
    versions there are (`available`: what the base offers, for the message), when none fits."""
    interpreters = await find_interpreters(version, python_dirs)
    chosen = next((i for i in interpreters if version_matches(version, i.version)), None)
    if chosen is None:
        offered = sorted({i.version_text for i in interpreters})
        raise ImageBuildError(
            f"Python {version} is not available: {available or 'the base image has none'}; "
            f"this worker has {', '.join(offered) or 'no other Python'} (stoker never downloads interpreters: "
            "install it on the worker, e.g. with pyenv, or pass the worker --python-dir)"
        )
    emit(f"copying Python {chosen.version_text} from {chosen.prefix} into the image")
    python = await asyncio.to_thread(_copy, chosen, layer_dir, lower)
    inside = Inside(lower=lower)
    await run_inside(inside, layer_dir, scratch, ["ldconfig"], emit)
    await run_inside(inside, layer_dir, scratch, [python, "-m", "ensurepip", "--default-pip"], emit)
    await run_inside(inside, layer_dir, scratch, ["ln", "-sf", python, "/usr/local/bin/python"], emit)
    return {"python": python, "python_version": chosen.version_text}


def _copy(interpreter: Interpreter, layer_dir: Path, lower: list[Path]) -> str:
    prefix, minor = interpreter.prefix, interpreter.minor
    local = layer_dir / "usr" / "local"
    (local / "bin").mkdir(parents=True, exist_ok=True)
    (local / "lib").mkdir(parents=True, exist_ok=True)
    executable = (prefix / "bin" / f"python{minor}").resolve()
    shutil.copy2(executable, local / "bin" / f"python{minor}")
    os.symlink(f"python{minor}", local / "bin" / "python3")
    for library in (prefix / "lib").glob("libpython*.so*"):
        shutil.copy2(library, local / "lib" / library.name, follow_symlinks=False)
    shutil.copytree(
        prefix / "lib" / f"python{minor}",
        local / "lib" / f"python{minor}",
        symlinks=True,
        ignore=lambda directory, names: [
            n for n in names if n in _LEFT_BEHIND and Path(directory).name == f"python{minor}"
        ],
    )
    (local / "lib" / f"python{minor}" / "site-packages").mkdir(exist_ok=True)
    binaries = [executable, *(prefix / "lib" / f"python{minor}" / "lib-dynload").glob("*.so")]
    for soname, path in _needed_libraries(binaries, prefix).items():
        if not any((layer / d / soname).exists() for layer in lower for d in _LIBRARY_DIRS):
            shutil.copy2(path, local / "lib" / soname)
    return f"/usr/local/bin/python{minor}"


def _needed_libraries(binaries: list[Path], prefix: Path) -> dict[str, Path]:
    """The shared libraries the binaries load from outside their prefix, by soname (ldd on the worker)."""
    needed: dict[str, Path] = {}
    for binary in binaries:
        result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
        for line in result.stdout.splitlines():
            match = _LDD_LINE.match(line)
            if match and not Path(match.group(2)).is_relative_to(prefix):
                needed.setdefault(match.group(1), Path(match.group(2)).resolve())
    return needed


if __name__ == "__main__":  # a check by hand: which interpreters this worker could copy
    for found in asyncio.run(find_interpreters(sys.argv[1] if len(sys.argv) > 1 else "3", DEFAULT_PYTHON_DIRS)):
        print(found.version_text, found.prefix)
