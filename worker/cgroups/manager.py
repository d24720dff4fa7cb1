"""The worker's cgroups: a parent of its own in each hierarchy (stoker/<worker>), one child per
container, and what a previous run of the worker left there removed when it starts.

The parent sits at the root of each hierarchy, as Docker's /docker/<id> does. Its name carries
the worker's id and a digest of its work directory: one name per worker installation, so two
workers on one machine (tests run many, all named after the host) never clear each other's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from pathlib import Path

from worker.cgroups.cgroup import CgroupError, ContainerCgroup, remove_directory
from worker.cgroups.layout import CgroupsUnusable, Hierarchy, Layout, detect
from worker.cgroups.limits import Limits

log = logging.getLogger(__name__)

TOP = "stoker"  # every worker's parent is below this, in each hierarchy


def parent_name(worker_id: str, work_dir: Path) -> str:
    digest = hashlib.sha256(str(work_dir.resolve()).encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', worker_id)[:64]}-{digest}"


class WorkerCgroups:
    def __init__(self, layout: Layout, parent: str, pids_max: int) -> None:
        self.layout = layout
        self.parent = parent
        self.pids_max = pids_max  # each container's, from --container-pids-limit; 0: none

    def directory(self, hierarchy: Hierarchy) -> Path:
        return hierarchy.mount / TOP / self.parent

    def prepare(self) -> int:
        """Make the parent, remove the containers' cgroups a previous run left (killing what is
        left in them); return how many it removed. CgroupsUnusable when the kernel refuses."""
        removed = 0
        for hierarchy in self.layout.hierarchies:
            parent = self.directory(hierarchy)
            try:
                parent.mkdir(parents=True, exist_ok=True)
                if hierarchy.version == 2:
                    enable_controllers(hierarchy, parent)
            except (OSError, CgroupError) as exc:
                why = exc.strerror if isinstance(exc, OSError) else str(exc)
                raise CgroupsUnusable(f"cannot create the cgroup {parent}: {why}") from None
            for stale in sorted(p for p in parent.iterdir() if p.is_dir()):
                ContainerCgroup(stale.name, {hierarchy: stale}, Limits()).remove()
                removed += 1
        return removed

    def container(self, container_id: str, limits: Limits) -> ContainerCgroup:
        """A new cgroup for the container, its limits written (pids_max added); CgroupError."""
        limits = dataclasses.replace(limits, pids_max=self.pids_max)
        cgroup = ContainerCgroup(
            container_id, {h: self.directory(h) / container_id for h in self.layout.hierarchies}, limits
        )
        try:
            cgroup.create()
        except CgroupError:
            cgroup.remove()
            raise
        return cgroup

    def remove(self) -> None:
        """Remove the (empty by now) parents: the worker stops."""
        for hierarchy in self.layout.hierarchies:
            try:
                remove_directory(self.directory(hierarchy))
            except CgroupError as exc:
                log.warning("%s", exc)


def enable_controllers(hierarchy: Hierarchy, parent: Path) -> None:
    """cgroup v2 gives a child a controller only when each ancestor's cgroup.subtree_control
    names it: write them from the hierarchy's root down to `parent` (the containers' parent)."""
    wanted = " ".join(f"+{c}" for c in sorted(hierarchy.controllers))
    relative = parent.relative_to(hierarchy.mount)
    for directory in [*(hierarchy.mount / p for p in reversed(relative.parents)), parent]:
        control = directory / "cgroup.subtree_control"
        try:
            with open(control, "w") as file:
                file.write(wanted)
        except OSError as exc:
            raise CgroupError(f"cannot enable {wanted} in {control}: {exc.strerror}") from None


def check() -> None:
    """CgroupsUnusable, in one line saying why, when this worker cannot give containers cgroups."""
    if os.geteuid() != 0:
        raise CgroupsUnusable(f"cgroup limits need root, and the worker runs as uid {os.geteuid()}")
    layout = detect()
    for hierarchy in layout.hierarchies:
        if not os.access(hierarchy.mount, os.W_OK):
            raise CgroupsUnusable(f"the cgroup hierarchy at {hierarchy.mount} is not writable (mounted read-only?)")
