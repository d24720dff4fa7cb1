"""One container's cgroup: a directory in each hierarchy the layout uses, its limits written,
its processes attached, asked after exit whether the OOM killer ended it, then emptied and removed.

Plain file operations under /sys/fs/cgroup (or any directory tree laid out the same way, which
is how the v2 files are tested on a machine whose controllers v1 holds).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from pathlib import Path

from worker.cgroups.layout import Hierarchy
from worker.cgroups.limits import Limits, v1_settings, v2_settings

REMOVE_ATTEMPTS = 200  # kill-and-look rounds before a cgroup that will not empty is given up on
REMOVE_PAUSE = 0.01  # seconds between them: SIGKILLed processes take a moment to leave


class CgroupError(Exception):
    """A cgroup could not be made, limited or attached to; the message says which and why."""


class ContainerCgroup:
    def __init__(self, name: str, directories: dict[Hierarchy, Path], limits: Limits) -> None:
        self.name = name  # the container id
        self.directories = directories  # the container's cgroup in each hierarchy
        self.limits = limits

    def create(self) -> None:
        """Make the cgroup and write its limits; CgroupError when the kernel refuses."""
        for hierarchy, directory in self.directories.items():
            try:
                directory.mkdir(exist_ok=True)
            except OSError as exc:
                raise CgroupError(f"cannot create the cgroup {directory}: {exc.strerror}") from None
            if hierarchy.version == 1:
                settings = v1_settings(self.limits, has_memsw=(directory / "memory.memsw.limit_in_bytes").exists())
            else:
                settings = v2_settings(self.limits, has_swap=(directory / "memory.swap.max").exists())
            for controller, name, value in settings:
                if controller in hierarchy.controllers:
                    _write(directory / name, value)

    @property
    def procs_files(self) -> list[Path]:
        """The files a process writes its pid (or 0, for itself) into to enter the cgroup."""
        return [directory / "cgroup.procs" for directory in self.directories.values()]

    def attach(self, pid: int) -> None:
        """Move `pid` (with the threads it has; its children from now on follow) into the cgroup."""
        for procs in self.procs_files:
            _write(procs, str(pid))

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                found.update(int(line) for line in procs.read_text().split())
        return found

    def oom_kills(self) -> int | None:
        """How many of its processes the OOM killer killed; None when the kernel does not say."""
        for hierarchy, directory in self.directories.items():
            if "memory" not in hierarchy.controllers:
                continue
            counters = directory / ("memory.events" if hierarchy.version == 2 else "memory.oom_control")
            with contextlib.suppress(OSError):
                for line in counters.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        return None

    def hit_memory_limit(self) -> bool:
        """v1 without an oom_kill counter: whether its memory ever reached the limit."""
        for hierarchy, directory in self.directories.items():
            if hierarchy.version == 1 and "memory" in hierarchy.controllers:
                for name in ("memory.failcnt", "memory.memsw.failcnt"):
                    with contextlib.suppress(OSError, ValueError):
                        if int((directory / name).read_text()) > 0:
                            return True
        return False

    def out_of_memory(self, exit_code: int) -> bool:
        """Whether the container's process, exited with `exit_code`, was killed for memory: it
        died by SIGKILL (the OOM killer's signal) and the kernel counted an OOM kill in it."""
        if exit_code != -signal.SIGKILL:
            return False
        kills = self.oom_kills()
        return kills > 0 if kills is not None else self.hit_memory_limit()

    def exit_reason(self, exit_code: int) -> str:
        """Why the container exited with `exit_code`, as ContainerExited.reason says it."""
        if self.out_of_memory(exit_code):
            if self.limits.memory_limit_mib:
                return f"ran out of memory at {self.limits.memory_limit_mib} MiB"
            return "ran out of memory (the machine's: it has no limit of its own)"
        return f"exited with code {exit_code}" if exit_code else ""

    def remove(self) -> None:
        """Kill what is left in it, then remove it (blocking: call it off the event loop)."""
        for hierarchy, directory in self.directories.items():
            kill = directory / "cgroup.kill"  # v2, kernel 5.14+: everything in it at once
            if hierarchy.version == 2 and kill.exists():
                with contextlib.suppress(OSError):
                    kill.write_text("1")
        for _ in range(REMOVE_ATTEMPTS):
            left = self.pids()
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(REMOVE_PAUSE)
        for directory in self.directories.values():
            remove_directory(directory)


def remove_directory(directory: Path) -> None:
    """rmdir a cgroup whose processes are gone; its own children first (a container's app may
    have made some). A cgroup still busy after the bounded wait is left, and says so."""
    if not directory.is_dir():
        return
    for child in directory.iterdir():
        if child.is_dir():
            remove_directory(child)
    for _ in range(REMOVE_ATTEMPTS):
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise CgroupError(f"cannot remove the cgroup {directory}: {exc.strerror}") from None
            time.sleep(REMOVE_PAUSE)
    raise CgroupError(f"the cgroup {directory} still has processes; it was left in place")


def _write(path: Path, value: str) -> None:
    try:
        with open(path, "w") as file:
            file.write(value)
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror}") from None
