"""The stoker runtime inside an image: its packages (client, protos, worker) and their Python
dependencies, installed on the worker for the image's Python version and bind-mounted read-only
into each container at RUNTIME_PATHS, which its PYTHONPATH names."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.metadata
import os
import platform
import shutil
from pathlib import Path

import uv

from worker.rootfs.layers import lock_file
from worker.rootfs.process import Output, run
from worker.sandbox.spec import Bind

RUNTIME_PACKAGES = ("client", "protos", "worker")  # what a container imports of stoker
CODE_PATH = "/opt/stoker/code"
DEPS_PATH = "/opt/stoker/deps"
RUNTIME_PATHS = (CODE_PATH, DEPS_PATH)
# Wheels for any glibc from 2.28 (Debian 10 on): registry images may be older than the worker.
PLATFORM_TAG = "manylinux_2_28"


def requirements() -> list[str]:
    requires = importlib.metadata.requires("stoker") or []
    return sorted(r for r in requires if "extra ==" not in r)


def runtime_dir(root: Path, python_minor: str) -> Path:
    digest = hashlib.sha256("\n".join(requirements()).encode()).hexdigest()[:12]
    return root / "runtime" / f"py{python_minor}-{digest}"


async def ensure_runtime(root: Path, python_minor: str, emit: Output, env: dict[str, str]) -> Path:
    """The runtime's dependencies for Python `python_minor` ("3.12"), installed once per version
    (and per set of requirements) into a directory of `root`; binary wheels only: nothing is
    compiled for an interpreter that is not the worker's."""
    target = runtime_dir(root, python_minor)
    marker = target.with_name(target.name + ".done")
    if marker.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = await asyncio.to_thread(lock_file, target.with_name(target.name + ".lock"))
    try:
        if marker.exists():
            return target
        shutil.rmtree(target, ignore_errors=True)
        emit(f"installing the stoker runtime for Python {python_minor}")
        argv = [
            uv.find_uv_bin(),
            "pip",
            "install",
            "--target",
            str(target),
            "--python-version",
            python_minor,
            "--python-platform",
            f"{platform.machine()}-{PLATFORM_TAG}",
            "--only-binary",
            ":all:",
            *requirements(),
        ]
        try:
            await run(argv, emit, env=env, what=f"uv pip install (the stoker runtime for Python {python_minor})")
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        marker.write_text(python_minor)
        return target
    finally:
        os.close(lock)


SITECUSTOMIZE = Path(__file__).with_name("sitecustomize_inside.py")


def runtime_binds(deps: Path) -> list[Bind]:
    binds = [Bind(str(deps), DEPS_PATH), Bind(str(SITECUSTOMIZE), f"{CODE_PATH}/sitecustomize.py")]
    for name in RUNTIME_PACKAGES:
        source = Path(next(iter(importlib.import_module(name).__path__))).resolve()
        binds.append(Bind(str(source), f"{CODE_PATH}/{name}"))
    return binds
