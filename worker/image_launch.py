"""How containers and fork templates of an image start inside it (worker/rootfs/enter.py).

Each gets a directory of its own under `<work dir>/rootfs/` (its writable layer; removed when it
exits, and all of them when the worker starts). A container started fresh sees its code bundle
read-only at the same path as on the worker. A template sees the worker's containers directory
(read-only), so that the containers it forks find their bundles there, and a directory holding
its socket, at the same paths: the worker connects to the socket from outside. A template stays
in the worker's PID namespace (the pids it reports are the worker's to signal).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from worker.images import BuiltImage
from worker.sandbox.spec import Bind


def rootfs_dir(work_dir: Path) -> Path:
    return work_dir / "rootfs"


def clear(work_dir: Path) -> None:
    """What a previous run of the worker left (its containers are gone)."""
    shutil.rmtree(rootfs_dir(work_dir), ignore_errors=True)


def container_argv(image: BuiltImage, work_dir: Path, container_id: str, directory: Path) -> list[str]:
    own = rootfs_dir(work_dir) / container_id
    enter = image.enter(own, str(directory), [Bind(str(directory), str(directory))])
    return enter.argv([image.python, "-m", "worker.runtime"])


def own_dir(work_dir: Path, container_id: str) -> Path:
    return rootfs_dir(work_dir) / container_id


def template_launch(image: BuiltImage, work_dir: Path, name: str, cwd: Path) -> tuple[list[str], Path]:
    """The command line before the template's own (`python -m worker.runtime.template ...`)
    and its socket's path."""
    sockets = work_dir / "sockets" / f"{name}-{uuid.uuid4().hex[:6]}"
    sockets.mkdir(parents=True, exist_ok=True)
    containers = work_dir / "containers"
    binds = [Bind(str(containers), str(containers)), Bind(str(sockets), str(sockets), read_only=False)]
    if not cwd.is_relative_to(containers):
        binds.append(Bind(str(cwd), str(cwd)))
    enter = image.enter(rootfs_dir(work_dir) / sockets.name, str(cwd), binds)
    enter.pid_namespace = False  # see Enter.pid_namespace
    return enter.argv([]), sockets / "t.sock"
