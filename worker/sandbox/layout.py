"""Where a worker's sandboxes live and what they are made of: the SandboxSpec of each fork
template and each container.

Interim, until images are root filesystems (the rootfs work): every sandbox's root is one base
root filesystem (`--sandbox-rootfs`), and the host's interpreter, the worker's venv, the stoker
source and the image's venv (with the interpreter it was made from) are bound read-only at their
own paths inside, so that today's containers run unchanged in it. `binds_for()` is the one
place that knows this; with image layers, `lower_dirs` become the image's and these binds go.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import worker
from worker.sandbox.spec import NVIDIA_CONTROL_DEVICES, Bind, Network, SandboxSpec

CODE_DIR = "/app"  # the code bundle, read-only, inside every container: its working directory


@dataclass
class SandboxLayout:
    rootfs: Path  # the root filesystem every sandbox is an overlay of (for now)
    directory: Path  # the state dirs: t-*/ for templates, containers/ID/ for fresh containers
    uid_base: int
    device_dir: Path = Path("/dev")
    network: Network = "host"
    seccomp: bool = True
    gpu_indices: list[int] = field(default_factory=list)  # the worker's GPUs
    _count: itertools.count[int] = field(default_factory=itertools.count)

    def clear(self) -> None:
        """Remove every state dir (at start: what a previous run left)."""
        shutil.rmtree(self.directory, ignore_errors=True)

    def template(self, key: str, image_root: Path | None, bundle: Path | None = None) -> SandboxSpec:
        """A fork template's sandbox: with every GPU's nodes (each child keeps only its own), its
        containers' state dirs inside its own, and a memory snapshot's code `bundle` at CODE_DIR."""
        name = f"t-{(key or 'worker')[-12:]}-{next(self._count)}"
        binds = [*binds_for(image_root), *_host_network_files()]  # it is on the host's network
        if bundle is not None:
            binds.append(Bind(str(bundle), CODE_DIR))
        return SandboxSpec(
            lower_dirs=[self.rootfs],
            state_dir=self.directory / name,
            hostname=name,
            workdir=CODE_DIR if bundle is not None else "/",
            binds=binds,
            devices=self._devices(self.gpu_indices),
            device_dir=self.device_dir,
            uid_base=self.uid_base,
            network="host",  # its containers get their own; the template serves no one
            seccomp="template" if self.seccomp else "off",
            private=True,
        )

    def container(
        self, container_id: str, image_root: Path | None, gpu_indices: list[int], template: SandboxSpec | None
    ) -> SandboxSpec:
        """A container's sandbox; its state dir is inside `template`'s when it forks from one (so
        the template sees it), and its code bundle goes in `bundle_dir(spec)`."""
        state_dir = template.container_dir(container_id) if template else self.directory / "containers" / container_id
        return SandboxSpec(
            lower_dirs=[self.rootfs],
            state_dir=state_dir,
            hostname=container_id,
            workdir=CODE_DIR,
            binds=[*binds_for(image_root), *self._network_files(), Bind(str(bundle_dir(state_dir)), CODE_DIR)],
            devices=self._devices(gpu_indices),
            device_dir=self.device_dir,
            uid_base=self.uid_base,
            network=self.network,
            seccomp="container" if self.seccomp else "off",
        )

    def _network_files(self) -> list[Bind]:
        return _host_network_files() if self.network == "host" else []

    def _devices(self, gpu_indices: list[int]) -> list[str]:
        if not gpu_indices:
            return []
        return [f"nvidia{i}" for i in gpu_indices] + list(NVIDIA_CONTROL_DEVICES)


def inside_environment(env: dict[str, str]) -> dict[str, str]:
    """`env` (built for a process on the host) as a sandbox's root sees things: its home is
    the image's /root, and the host's TMPDIR is not there."""
    inside = {name: value for name, value in env.items() if name != "TMPDIR"}
    inside.update({"HOME": "/root", "USER": "root", "LOGNAME": "root"})
    return inside


def _host_network_files() -> list[Bind]:
    """On the host's network, the host's resolver and hosts file, as Docker gives them."""
    return [Bind(path, path) for path in ("/etc/resolv.conf", "/etc/hosts") if os.path.isfile(path)]


def bundle_dir(state_dir: Path) -> Path:
    return state_dir / "bundle"


def binds_for(image_root: Path | None) -> list[Bind]:
    """The host paths today's containers run from, read-only at their own paths: the worker's
    interpreter and venv, the stoker source, and an image's venv with its base interpreter."""
    paths = [Path(sys.base_prefix), Path(sys.prefix), Path(worker.__file__).resolve().parent.parent]
    if image_root is not None:
        paths.append(image_root)
        home = _venv_home(image_root)
        if home is not None:
            paths.append(home)
    kept: list[Path] = []
    for path in sorted({p.resolve() for p in paths}):
        if not any(path.is_relative_to(k) for k in kept):  # inside one bound already
            kept.append(path)
    return [Bind(str(p), str(p)) for p in kept]


def _venv_home(venv: Path) -> Path | None:
    """The prefix of the interpreter a venv was made from (its pyvenv.cfg's `home` is its bin/)."""
    try:
        for line in (venv / "pyvenv.cfg").read_text().splitlines():
            name, _, value = line.partition("=")
            if name.strip() == "home":
                return Path(os.path.realpath(value.strip())).parent
    except OSError:
        pass
    return None


def prepare_container_dir(spec: SandboxSpec) -> None:
    """A container's state dir, before its bundle is extracted: the writable layer belongs to
    the sandbox's root; the bundle dir and mount points to the worker."""
    from worker.sandbox.launch import prepare

    bundle_dir(spec.state_dir).mkdir(parents=True, exist_ok=True)  # a directory: its mount point is one
    prepare(spec)
