"""What a sandbox is made of (SandboxSpec, in the worker's view of the host), and what the
process entering it does (Rooting, in that process's own view of the filesystem).

A sandbox started from the host (a fork template, or a container started fresh) gets its host
paths mounted by the launcher (worker/sandbox/launch.py) under its state dir; a container forked
from a template sees them through the template's private path (PRIVATE_PATH, a view of the
template's state dir), so the same Rooting code builds both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

# Inside a fork template: its state dir, from which its containers mount their own root.
PRIVATE_PATH = "/.stoker-sandbox"
# Where the launcher shows a sandbox's state dir to the sandbox's root while it builds it: the
# host path's parents may be closed to it (a work dir under /root, mode 0700).
STAGE_PATH = "/tmp/.stoker-sandbox"
DEFAULT_UID_BASE = 100_000
ID_COUNT = 65_536  # uids (and gids) 0..65535 inside map to uid_base.. outside
# The device nodes every sandbox gets, and the NVIDIA nodes a GPU container gets beside its own.
BASIC_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
NVIDIA_CONTROL_DEVICES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
Network = Literal["host", "none", "private"]
NETWORKS: tuple[str, ...] = ("host", "none", "private")
# Seccomp profiles: "container" denies what Docker's default profile does; "template" allows the
# namespace and mount calls a template's children make to build their own sandbox.
Seccomp = Literal["container", "template", "off"]


@dataclass(frozen=True)
class Bind:
    source: str  # a path in the view of whoever mounts it (the host, for a SandboxSpec)
    target: str  # where it appears inside the sandbox
    read_only: bool = True


@dataclass(frozen=True)
class SandboxSpec:
    """One sandbox, paths on the host. `state_dir` is its own: its writable layer (upper/, beside
    overlayfs's work/), the mount points the launcher fills, and a template's containers'
    directories (containers/ID/); the worker creates it and removes it after the sandbox ends."""

    lower_dirs: list[Path]  # root filesystem layers, lowest first
    state_dir: Path
    hostname: str  # the container id
    workdir: str = "/"
    binds: list[Bind] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)  # beyond BASIC_DEVICES: names under device_dir
    device_dir: Path = Path("/dev")
    uid_base: int = DEFAULT_UID_BASE  # inside uid 0 is this uid on the host; no capability there
    network: Network = "host"
    seccomp: Seccomp = "container"
    private: bool = False  # a fork template: keep PRIVATE_PATH for its containers

    @property
    def upper_dir(self) -> Path:
        return self.state_dir / "upper"

    @property
    def work_dir(self) -> Path:
        return self.state_dir / "work"

    @property
    def root_dir(self) -> Path:
        return self.state_dir / "root"

    def container_dir(self, container_id: str) -> Path:
        """In a template's state dir: the state dir of a container forked from it."""
        return self.state_dir / "containers" / container_id


@dataclass(frozen=True)
class Rooting:
    """What the process that enters a sandbox mounts, in its own view: an overlay of `lowers`
    (lowest first) and `upper` at `root`, then binds, devices, /proc, /tmp, /dev; then it pivots
    into `root`. `private`: the directory bound at PRIVATE_PATH inside (a template's)."""

    lowers: list[str]
    upper: str
    work: str
    root: str
    binds: list[Bind]
    devices: list[tuple[str, str]]  # (node as seen now, its name under /dev inside)
    workdir: str
    hostname: str
    network: Network
    seccomp: Seccomp
    private: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Rooting:
        raw: dict[str, Any] = json.loads(text)
        raw["binds"] = [Bind(**b) for b in raw["binds"]]
        raw["devices"] = [tuple(d) for d in raw["devices"]]
        return cls(**raw)


def mounted_rooting(spec: SandboxSpec) -> Rooting:
    """The Rooting of a sandbox started from the host, once the launcher mounted its host paths
    under its state dir (mount_points() names them) and showed that at STAGE_PATH."""
    lowers, binds, devices = mount_points(spec)

    def seen(host: Path) -> str:
        return str(Path(STAGE_PATH) / host.relative_to(spec.state_dir))

    return Rooting(
        lowers=[seen(target) for _, target in lowers],
        upper=seen(spec.upper_dir),
        work=seen(spec.work_dir),
        root=seen(spec.root_dir),
        binds=[Bind(seen(point), bind.target, bind.read_only) for bind, point in binds],
        devices=[(seen(point), name) for name, point in devices],
        workdir=spec.workdir,
        hostname=spec.hostname,
        network=spec.network,
        seccomp=spec.seccomp,
        private=STAGE_PATH if spec.private else "",
    )


def mount_points(
    spec: SandboxSpec,
) -> tuple[list[tuple[Path, Path]], list[tuple[Bind, Path]], list[tuple[str, Path]]]:
    """Where the launcher mounts each layer, bind and device node of `spec`, under its state dir."""
    lowers = [(Path(lower), spec.state_dir / "lower" / str(i)) for i, lower in enumerate(spec.lower_dirs)]
    binds = [(bind, spec.state_dir / "binds" / str(i)) for i, bind in enumerate(spec.binds)]
    # The NVIDIA control nodes, and in a substituted device dir even basic ones, may be absent.
    names = [n for n in dict.fromkeys([*BASIC_DEVICES, *spec.devices]) if (spec.device_dir / n).exists()]
    devices = [(name, spec.state_dir / "dev" / name) for name in names]
    return lowers, binds, devices


def forked_rooting(spec: SandboxSpec, template: SandboxSpec) -> Rooting:
    """The Rooting of a container forked from `template`, in the template's view: its layers and
    device nodes are the template's (under PRIVATE_PATH), its binds are paths the template has
    (its own binds, or under its state dir). ValueError when `spec` needs something the
    template cannot see."""
    if [Path(p) for p in spec.lower_dirs] != [Path(p) for p in template.lower_dirs]:
        raise ValueError("a container forked from a template must have the template's layers")
    missing = sorted({name for name, _ in mount_points(spec)[2]} - {name for name, _ in mount_points(template)[2]})
    if missing:
        raise ValueError(f"the template has no device nodes {', '.join(missing)}")
    private = Path(PRIVATE_PATH)

    def seen(host: Path) -> str:
        if host.is_relative_to(template.state_dir):
            return str(private / host.relative_to(template.state_dir))
        for bind in template.binds:
            if host.is_relative_to(bind.source):
                return str(Path(bind.target) / host.relative_to(bind.source))
        raise ValueError(f"{host} is not visible in the template's sandbox")

    _, _, own_devices = mount_points(spec)
    return Rooting(
        lowers=[str(private / "lower" / str(i)) for i in range(len(spec.lower_dirs))],
        upper=seen(spec.upper_dir),
        work=seen(spec.work_dir),
        root=seen(spec.root_dir),
        binds=[Bind(seen(Path(bind.source)), bind.target, bind.read_only) for bind in spec.binds],
        devices=[(str(private / "dev" / name), name) for name, _ in own_devices],
        workdir=spec.workdir,
        hostname=spec.hostname,
        network=spec.network,
        seccomp=spec.seccomp,
    )
