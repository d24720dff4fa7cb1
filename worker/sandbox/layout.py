"""Where a worker's sandboxes live and what they are made of: the SandboxSpec of each fork
template and each container.

A container of an image is rooted in the image's layers, with the stoker runtime bound
read-only where the image expects it (worker/rootfs/runtime.py). A container with no image (the
worker's own environment) is rooted in one base root filesystem: the default image's Debian base,
which the worker builds at start (worker/images.py: default_root), or `--sandbox-rootfs`; with the
host's interpreter, the worker's venv and the stoker source bound read-only at their own paths
inside. Either also gets the host directories the operator shares with every container
(`--sandbox-bind`). `roots()` is the one place that knows all of it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import worker
from worker.sandbox.spec import NVIDIA_CONTROL_DEVICES, Bind, Network, SandboxSpec

if TYPE_CHECKING:
    from worker.images import BuiltImage

CODE_DIR = "/app"  # the code bundle, read-only, inside every container: its working directory


@dataclass
class SandboxLayout:
    rootfs: Path | None  # what a container with no image is rooted in; None: it runs on the host
    directory: Path  # the state dirs: t-*/ for templates, containers/ID/ for fresh containers
    uid_base: int
    device_dir: Path = Path("/dev")
    network: Network = "host"
    seccomp: bool = True
    gpu_indices: list[int] = field(default_factory=list)  # the worker's GPUs
    nodeless_gpus: set[int] = field(default_factory=set)  # those of them with no device node here
    # With network "private": the /etc/resolv.conf its containers get (worker/network/dns.py).
    resolv_conf: str = ""
    shared: list[Bind] = field(default_factory=list)  # the operator's host directories, read-write
    _count: itertools.count[int] = field(default_factory=itertools.count)

    def clear(self) -> None:
        """Remove every state dir (at start: what a previous run left)."""
        shutil.rmtree(self.directory, ignore_errors=True)

    def template(self, key: str, image: BuiltImage | None, bundle: Path | None = None) -> SandboxSpec:
        """A fork template's sandbox: with every GPU's nodes (each child keeps only its own), its
        containers' state dirs inside its own, and a memory snapshot's code `bundle` at CODE_DIR."""
        name = f"t-{(key or 'worker')[-12:]}-{next(self._count)}"
        lower_dirs, image_binds = self.roots(image)
        binds = [*image_binds, *_host_network_files()]  # it is on the host's network
        if bundle is not None:
            binds.append(Bind(str(bundle), CODE_DIR))
        return SandboxSpec(
            lower_dirs=lower_dirs,
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
        self, container_id: str, image: BuiltImage | None, gpu_indices: list[int], template: SandboxSpec | None
    ) -> SandboxSpec:
        """A container's sandbox; its state dir is inside `template`'s when it forks from one (so
        the template sees it), and its code bundle goes in `bundle_dir(spec)`."""
        state_dir = template.container_dir(container_id) if template else self.directory / "containers" / container_id
        lower_dirs, image_binds = self.roots(image)
        network_files = self._network_files(state_dir, container_id)
        return SandboxSpec(
            lower_dirs=lower_dirs,
            state_dir=state_dir,
            hostname=container_id,
            workdir=CODE_DIR,
            binds=[*image_binds, *network_files, Bind(str(bundle_dir(state_dir)), CODE_DIR)],
            devices=self._devices(gpu_indices),
            device_dir=self.device_dir,
            uid_base=self.uid_base,
            network=self.network,
            seccomp="container" if self.seccomp else "off",
        )

    def roots(self, image: BuiltImage | None) -> tuple[list[Path], list[Bind]]:
        """What a sandbox of `image` is an overlay of, lowest first, and what is bound into it."""
        if image is not None:
            return list(image.layers), [*image.binds(), *self.shared]
        if self.rootfs is None:
            raise ValueError("a container of the worker's own environment has no sandbox before its root is built")
        return [self.rootfs], [*binds_for(), *self.shared]

    def _network_files(self, state_dir: Path, hostname: str) -> list[Bind]:
        """On the host's network, the host's files; on a private one, its own (written here, in
        its state dir, which its template sees): the container network's resolvers, and a
        hosts file naming only itself."""
        if self.network == "host":
            return _host_network_files()
        if self.network != "private":
            return []
        directory = state_dir / "etc"
        directory.mkdir(parents=True, exist_ok=True)
        files = {
            "resolv.conf": self.resolv_conf,
            "hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n",
        }
        for name, text in files.items():
            (directory / name).write_text(text)
        return [Bind(str(directory / name), f"/etc/{name}") for name in files]

    def _devices(self, gpu_indices: list[int]) -> list[str]:
        """The device nodes of a container given `gpu_indices`: its GPUs' (but those declared
        with --gpus that have none on this machine: note_gpus), with the control nodes."""
        nodes = [f"nvidia{i}" for i in gpu_indices if i not in self.nodeless_gpus]
        return nodes + list(NVIDIA_CONTROL_DEVICES) if nodes else []

    def note_gpus(self, gpu_indices: list[int]) -> list[int]:
        """The worker's GPUs; returns those with no device node in the device dir (declared,
        not there: their containers get none), for the worker to warn about."""
        self.gpu_indices = list(gpu_indices)
        self.nodeless_gpus = {i for i in gpu_indices if not (self.device_dir / f"nvidia{i}").exists()}
        return sorted(self.nodeless_gpus)


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


def binds_for() -> list[Bind]:
    """The host paths a container of the worker's own environment runs from, read-only at their
    own paths: the worker's interpreter and venv, and the stoker source."""
    paths = [Path(sys.base_prefix), Path(sys.prefix), Path(worker.__file__).resolve().parent.parent]
    kept: list[Path] = []
    for path in sorted({p.resolve() for p in paths}):
        if not any(path.is_relative_to(k) for k in kept):  # inside one bound already
            kept.append(path)
    return [Bind(str(p), str(p)) for p in kept]


def prepare_container_dir(spec: SandboxSpec) -> None:
    """A container's state dir, before its bundle is extracted: the writable layer belongs to
    the sandbox's root; the bundle dir and mount points to the worker."""
    from worker.sandbox.launch import prepare

    bundle_dir(spec.state_dir).mkdir(parents=True, exist_ok=True)  # a directory: its mount point is one
    prepare(spec)


def shared_binds(flags: Sequence[str]) -> list[Bind]:
    """--sandbox-bind HOST[:INSIDE] flags as read-write binds; ValueError says which is wrong."""
    binds = []
    for flag in flags:
        host, _, inside = flag.partition(":")
        inside = inside or host
        if not (os.path.isabs(host) and os.path.isabs(inside)):
            raise ValueError(f"--sandbox-bind {flag!r}: give absolute paths, HOST or HOST:INSIDE")
        if not os.path.isdir(host):
            raise ValueError(f"--sandbox-bind {flag!r}: {host} is not a directory on this host")
        target = os.path.normpath(inside)
        if any(target == top or target.startswith(top + "/") for top in _RESERVED):
            raise ValueError(f"--sandbox-bind {flag!r}: {target} is the sandbox's own ({', '.join(_RESERVED)})")
        binds.append(Bind(os.path.normpath(host), target, read_only=False))
    return binds


# What every sandbox has of its own, which no shared directory may cover.
_RESERVED = ("/", CODE_DIR, "/proc", "/dev", "/sys", "/opt/stoker")
