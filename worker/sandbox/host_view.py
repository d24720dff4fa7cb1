"""How the host sees a sandbox's processes: each container's is PID 1 of a PID namespace of its
own, so a pid it reports about itself names no host process. With its namespace (the inode of
/proc/self/ns/pid) the host finds it; tests and benchmarks that signal or measure a container's
process from outside do."""

from __future__ import annotations

import os
from pathlib import Path


def host_pid(namespace: str, pid: int) -> int:
    """The host's pid of the process that is `pid` in PID namespace `namespace`; 0 when none is."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns" / "pid") != f"pid:[{namespace}]":
                continue
            status = (entry / "status").read_text()
        except OSError:
            continue  # exited meanwhile
        nspid = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
        if nspid and nspid[-1] == str(pid):
            return int(entry.name)
    return 0
