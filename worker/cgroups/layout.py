"""Where the cgroup controllers a container needs are mounted: cgroup v2 (unified), v1, or both
(the hybrid layout: v1 controllers each on their own hierarchy beside an empty cgroup2).

Read from /proc/self/mountinfo and, for v2, the root's cgroup.controllers; a controller mounted
on a v1 hierarchy is used there even when a cgroup2 is mounted too (the kernel lets a controller
live on one hierarchy only, and v1 claims it first).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The controllers a container's limits need: cpu (shares/weight, quota), memory, pids.
CONTROLLERS = ("cpu", "memory", "pids")
MOUNTINFO = Path("/proc/self/mountinfo")


class CgroupsUnusable(Exception):
    """cgroups cannot hold containers on this machine; the message says why, in one line."""


@dataclass(frozen=True)
class Hierarchy:
    """One mounted cgroup hierarchy and the controllers of CONTROLLERS it carries."""

    mount: Path
    version: int  # 1 or 2
    controllers: frozenset[str]


@dataclass(frozen=True)
class Layout:
    hierarchies: tuple[Hierarchy, ...]  # each needed controller on exactly one of them

    def hierarchy_of(self, controller: str) -> Hierarchy:
        return next(h for h in self.hierarchies if controller in h.controllers)


def parse_mountinfo(text: str) -> tuple[dict[Path, frozenset[str]], Path | None]:
    """(v1 mount -> its controllers, the cgroup2 mount or None) from mountinfo's text."""
    v1: dict[Path, frozenset[str]] = {}
    v2: Path | None = None
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        after = line.split(" - ", 1)[1].split()
        if len(after) < 3:
            continue
        fstype, options = after[0], after[2]
        mount = Path(_unescape(fields[4]))
        if fstype == "cgroup2" and v2 is None:
            v2 = mount
        elif fstype == "cgroup":
            v1[mount] = frozenset(options.split(","))
    return v1, v2


def detect(mountinfo: str | None = None, read_v2_controllers: bool = True) -> Layout:
    """The layout of this machine's cgroups; CgroupsUnusable when a needed controller is in none."""
    text = MOUNTINFO.read_text() if mountinfo is None else mountinfo
    v1, v2 = parse_mountinfo(text)
    v2_available: frozenset[str] = frozenset()
    if v2 is not None and read_v2_controllers:
        try:
            v2_available = frozenset((v2 / "cgroup.controllers").read_text().split())
        except OSError:
            v2_available = frozenset()
    return choose(v1, v2, v2_available)


def choose(v1: dict[Path, frozenset[str]], v2: Path | None, v2_available: frozenset[str]) -> Layout:
    """Each controller of CONTROLLERS on its v1 hierarchy if it has one, else on the cgroup2."""
    hierarchies: dict[Path, tuple[int, set[str]]] = {}
    missing = []
    for controller in CONTROLLERS:
        mount = next((m for m, options in v1.items() if controller in options), None)
        if mount is not None:
            hierarchies.setdefault(mount, (1, set()))[1].add(controller)
        elif v2 is not None and controller in v2_available:
            hierarchies.setdefault(v2, (2, set()))[1].add(controller)
        else:
            missing.append(controller)
    if missing:
        where = f"nor in the cgroup2 at {v2}" if v2 is not None else "and no cgroup2 is mounted"
        raise CgroupsUnusable(f"the cgroup controller(s) {', '.join(missing)} are on no cgroup v1 hierarchy {where}")
    return Layout(tuple(Hierarchy(m, version, frozenset(c)) for m, (version, c) in hierarchies.items()))


def _unescape(path: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return path
