"""Inside the sandbox's namespaces, as its root: mount its filesystem and pivot into it.

Runs in the process that becomes the sandbox's PID 1 (its /proc must show its own PID namespace),
before any code of the app: an overlay of the image's layers under the sandbox's own writable
layer, the binds (read-only where asked), a fresh /proc, a private /tmp, a minimal /dev made of
bind mounts of the allowed nodes (no mknod in a user namespace), /sys read-only; then pivot_root
and the old root detached, so nothing of the host's tree is reachable any more.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
from pathlib import Path

from worker.sandbox import libc
from worker.sandbox.spec import PRIVATE_PATH, Rooting

_ATIME_FLAGS = {1024: 1024, 2048: 2048, 4096: 1 << 21}  # statvfs ST_* -> MS_* (noatime, nodiratime, relatime)


def build_root(rooting: Rooting) -> None:
    root = rooting.root
    layers = ":".join(reversed(rooting.lowers))  # overlayfs lists the top layer first
    options = f"lowerdir={layers},upperdir={rooting.upper},workdir={rooting.work},userxattr"
    libc.mount("overlay", root, "overlay", libc.MS_NOSUID, options)
    if rooting.private:
        bind_mount(rooting.private, root + PRIVATE_PATH, read_only=False, recursive=True)
    _mount_dir("proc", root + "/proc", "proc", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)
    _mount_dir("tmpfs", root + "/tmp", "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, "mode=1777")
    bind_mount("/sys", root + "/sys", read_only=True, recursive=True)  # its locked submounts come along
    _make_dev(root + "/dev", rooting.devices)
    for bind in rooting.binds:  # last: a bind may be under /tmp (an image's venv, in tests)
        bind_mount(bind.source, root + bind.target, read_only=bind.read_only, recursive=True)


def pivot(rooting: Rooting) -> None:
    """Make the built root `/`, with nothing of the old one left reachable."""
    os.chdir(rooting.root)
    libc.pivot_root(".", ".")  # the old root ends up stacked under the new one, at "/"
    libc.umount2(".", libc.MNT_DETACH)
    os.chdir("/")
    os.chdir(rooting.workdir)


def _mount_dir(source: str, target: str, fstype: str, flags: int, data: str | None = None) -> None:
    os.makedirs(target, exist_ok=True)
    libc.mount(source, target, fstype, flags, data)


def bind_mount(source: str, target: str, *, read_only: bool, recursive: bool) -> None:
    """Bind `source` (a directory or a file) at `target`, made when missing; read-only after."""
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            Path(target).touch()
    libc.mount(source, target, None, libc.MS_BIND | (libc.MS_REC if recursive else 0))
    if read_only:
        # A remount must repeat the flags the kernel locked on the source (nosuid, nodev,
        # noexec, atime), or a user namespace may not change it.
        flags = os.statvfs(target).f_flag
        locked = flags & (libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)
        locked |= sum(ms for st, ms in _ATIME_FLAGS.items() if flags & st)
        libc.mount("none", target, None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY | locked)


def _make_dev(dev: str, devices: list[tuple[str, str]]) -> None:
    _mount_dir("tmpfs", dev, "tmpfs", libc.MS_NOSUID | libc.MS_NOEXEC, "mode=755,size=64k")
    for source, name in devices:
        target = f"{dev}/{name}"
        Path(target).touch(mode=0o666)
        libc.mount(source, target, None, libc.MS_BIND)
    _mount_dir("devpts", f"{dev}/pts", "devpts", libc.MS_NOSUID | libc.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
    os.symlink("pts/ptmx", f"{dev}/ptmx")
    _mount_dir("tmpfs", f"{dev}/shm", "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, "mode=1777")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1")):
        os.symlink(target, f"{dev}/{name}")
    os.symlink("/proc/self/fd/2", f"{dev}/stderr")


_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def loopback_up() -> None:
    """A new network namespace's loopback starts down: bring it up."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))
