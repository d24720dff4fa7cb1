"""cgroup limits per container (cpu, memory, pids), and whether the OOM killer ended one.

layout.py finds where the controllers are mounted (v2, v1, or the hybrid of both); limits.py
says a container's limits as the files of each version; cgroup.py is one container's cgroup;
manager.py is the worker's parent of them all and the check that cgroups are usable at all.
"""

from worker.cgroups.cgroup import CgroupError, ContainerCgroup
from worker.cgroups.layout import CgroupsUnusable, Layout, detect
from worker.cgroups.limits import Limits
from worker.cgroups.manager import WorkerCgroups, check, parent_name

__all__ = [
    "CgroupError",
    "CgroupsUnusable",
    "ContainerCgroup",
    "Layout",
    "Limits",
    "WorkerCgroups",
    "check",
    "detect",
    "parent_name",
]
