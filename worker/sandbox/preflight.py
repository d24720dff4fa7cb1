"""Can this worker build sandboxes? Checked once at start, by building one: a worker that cannot
refuses to start, with one line saying which piece is missing (unless told to run containers
insecurely on the host)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from worker.sandbox.launch import CHECK

# The call that failed in a trial sandbox -> what the machine lacks.
_MISSING = (
    ("chown", "it cannot give the sandbox's files to its host uid range (is it root of the host, not of a container?)"),
    ("uid_map", "it cannot map a uid range into a user namespace (is it root of the host, not of a container?)"),
    ("unshare", "it cannot make user namespaces"),
    ("open_tree", "its kernel has no idmapped mounts (Linux 5.12 or later)"),
    ("mount_setattr", "its filesystem does not support idmapped mounts"),
    ("move_mount", "it cannot attach idmapped mounts"),
    ("overlay", "it cannot mount overlayfs in a user namespace (Linux 5.11 or later)"),
    ("pivot_root", "it cannot pivot_root"),
    ("proc", "it cannot mount /proc in a PID namespace"),
    ("prctl", "it cannot install a seccomp filter"),
)


class SandboxUnavailable(Exception):
    """One line: why this worker cannot build sandboxes."""


def check(state_dir: Path, rootfs: Path | None) -> None:
    """Raise SandboxUnavailable saying why this machine cannot build sandboxes."""
    prefix = "the worker cannot build sandboxes: "
    advice = "; run it as root on a host with user namespaces and overlayfs, or pass --insecure-no-sandbox"
    if os.geteuid() != 0:
        raise SandboxUnavailable(f"{prefix}it is not root (uid {os.geteuid()}){advice}")
    try:
        if int(Path("/proc/sys/user/max_user_namespaces").read_text()) == 0:
            raise SandboxUnavailable(f"{prefix}user namespaces are disabled (user.max_user_namespaces is 0){advice}")
    except (OSError, ValueError):
        pass
    if rootfs is not None and not rootfs.is_dir():
        raise SandboxUnavailable(f"{prefix}its root filesystem {rootfs} is not a directory")
    result = subprocess.run(
        [sys.executable, "-m", "worker.sandbox", CHECK, str(state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1]
        raise SandboxUnavailable(prefix + why(detail) + advice)


def why(detail: str) -> str:
    """What the machine lacks, from the last line a failed trial sandbox printed."""
    detail = detail.removeprefix("the sandbox could not be built: ")
    for call, lack in _MISSING:
        if call in detail:
            return f"{lack} ({detail})"
    return detail
