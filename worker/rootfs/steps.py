"""Each kind of image step, run as root inside the image into the layer being built."""

from __future__ import annotations

import os
import shlex
from collections.abc import Awaitable, Callable
from pathlib import Path

import uv

from protos import stoker_pb2 as pb
from worker.rootfs.inside import Inside, run_inside
from worker.rootfs.process import ImageBuildError, Output
from worker.sandbox.spec import Bind

INPUT = "/tmp/.stoker/in"  # a step's inputs (requirements, files), mounted read-only
UV = "/tmp/.stoker/uv"
UV_CACHE = "/tmp/.stoker/uv-cache"
_APT = "apt-get -q -o APT::Sandbox::User=root"

FetchBlob = Callable[[str], Awaitable[bytes]]


async def run_step(
    step: pb.ImageStep,
    inside: Inside,
    tree: Path,
    scratch: Path,
    emit: Output,
    fetch_blob: FetchBlob,
    uv_cache_dir: str = "",
) -> None:
    """Build `step`'s layer into `tree` (an empty directory) on top of `inside`."""
    inputs = scratch / "in"
    inputs.mkdir()
    binds = [Bind(str(inputs), INPUT)]
    kind = step.WhichOneof("kind")
    if kind == "apt_install":
        packages = " ".join(shlex.quote(p) for p in step.apt_install.packages)
        script = f"{_APT} update && {_APT} install -y --no-install-recommends {packages} && rm -rf /var/lib/apt/lists/*"
        await run_inside(
            inside, tree, scratch, ["/bin/sh", "-c", script], emit, binds=binds, what=f"apt-get install {packages}"
        )
    elif kind == "pip_install":
        argv = [inside.python, "-m", "pip", "install", "--no-cache-dir", "--root-user-action=ignore"]
        argv += ["--disable-pip-version-check", *_pip_arguments(step.pip_install, inputs)]
        await run_inside(inside, tree, scratch, argv, emit, binds=binds, what="pip install " + " ".join(argv[7:]))
    elif kind == "uv_pip_install":
        binds.append(Bind(uv.find_uv_bin(), UV))
        env = {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1", "UV_COMPILE_BYTECODE": "1", "NO_COLOR": "1"}
        if uv_cache_dir:
            os.makedirs(uv_cache_dir, exist_ok=True)
            binds.append(Bind(uv_cache_dir, UV_CACHE, read_only=False))
            env.update(UV_CACHE_DIR=UV_CACHE, UV_LINK_MODE="copy")  # no hard links across mounts
        else:
            env["UV_NO_CACHE"] = "1"
        argv = [UV, "pip", "install", "--system", "--break-system-packages", "--python", inside.python]
        argv += _pip_arguments(step.uv_pip_install, inputs)
        await run_inside(
            inside, tree, scratch, argv, emit, binds=binds, env=env, what="uv pip install " + " ".join(argv[7:])
        )
    elif kind == "run_commands":
        for command in step.run_commands.commands:
            emit(f"$ {command}")
            await run_inside(inside, tree, scratch, ["/bin/sh", "-c", command], emit, binds=binds, what=command)
    elif kind == "workdir":
        await run_inside(inside, tree, scratch, ["mkdir", "-p", step.workdir], emit)
    elif kind == "add_files":
        (inputs / "files.tar").write_bytes(await fetch_blob(step.add_files.digest))
        argv = ["tar", "-x", "-f", f"{INPUT}/files.tar", "-C", "/", "--keep-directory-symlink"]
        await run_inside(inside, tree, scratch, argv, emit, binds=binds, what=step.add_files.description or "tar -x")
    else:
        raise ImageBuildError(f"image step {kind!r} does not make a layer")


def _pip_arguments(pip: pb.ImagePipInstall, inputs: Path) -> list[str]:
    argv: list[str] = []
    if pip.index_url:
        argv += ["--index-url", pip.index_url]
    if pip.extra_index_url:
        argv += ["--extra-index-url", pip.extra_index_url]
    if pip.find_links:
        argv += ["--find-links", pip.find_links]
    if pip.pre:
        argv.append("--pre")
    argv += shlex.split(pip.extra_options)
    if pip.requirements_txt:
        (inputs / "requirements.txt").write_text(pip.requirements_txt)
        argv += ["-r", f"{INPUT}/requirements.txt"]
    return [*argv, *pip.packages]
