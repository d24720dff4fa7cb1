"""The Linux calls Python 3.11 lacks, through ctypes on libc: namespaces, mounts, pivot_root,
prctl, sethostname, and the new mount API (open_tree, mount_setattr, move_mount) for idmapped
mounts. Each raises OSError with the errno and the call's name, as os.* calls do."""

from __future__ import annotations

import ctypes
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_IDMAP = 0x00100000

# Syscalls glibc 2.36 has no wrapper for. From 424 on, every architecture shares one numbering.
_SYSCALLS = {
    "x86_64": {"pivot_root": 155},
    "aarch64": {"pivot_root": 41},
}
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_MOUNT_SETATTR = 442


def machine() -> str:
    """The architecture, as the syscall tables here name it; ValueError when it has none."""
    arch = platform.machine()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
    if arch not in _SYSCALLS:
        raise ValueError(f"sandboxes support x86_64 and aarch64, not {arch}")
    return arch


def _check(result: int, name: str, *detail: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}({', '.join(detail)}): {os.strerror(errno)}")
    return result


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare", hex(flags))


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    result = _libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    _check(result, "mount", source, target, fstype or "")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(target.encode(), ctypes.c_int(flags)), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    number = _SYSCALLS[machine()]["pivot_root"]
    _check(_libc.syscall(ctypes.c_long(number), new_root.encode(), put_old.encode()), "pivot_root", new_root)


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname", name)


def prctl(option: int, arg2: int = 0, arg3: int | ctypes.c_void_p = 0) -> None:
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), arg3, ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl")


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def clone_tree(source: str, *, recursive: bool = False) -> int:
    """A detached copy of the mount at `source` (with its submounts when `recursive`), as an fd."""
    flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0)
    return _check(
        _libc.syscall(ctypes.c_long(SYS_OPEN_TREE), ctypes.c_int(AT_FDCWD), source.encode(), ctypes.c_uint(flags)),
        "open_tree",
        source,
    )


def attach_tree(fd: int, target: str) -> None:
    """Mount the detached tree `fd` at `target`."""
    _check(
        _libc.syscall(
            ctypes.c_long(SYS_MOVE_MOUNT),
            ctypes.c_int(fd),
            b"",
            ctypes.c_int(AT_FDCWD),
            target.encode(),
            ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
        ),
        "move_mount",
        target,
    )


def idmapped_bind(source: str, target: str, userns_fd: int, *, read_only: bool) -> None:
    """Bind `source` at `target`, its owners shifted as the user namespace `userns_fd` maps
    them: a file owned by uid 0 on disk is owned by that namespace's root."""
    fd = clone_tree(source)
    try:
        attr = _MountAttr(MOUNT_ATTR_IDMAP | (MOUNT_ATTR_RDONLY if read_only else 0), 0, 0, userns_fd)
        _check(
            _libc.syscall(
                ctypes.c_long(SYS_MOUNT_SETATTR),
                ctypes.c_int(fd),
                b"",
                ctypes.c_uint(AT_EMPTY_PATH),
                ctypes.byref(attr),
                ctypes.c_size_t(ctypes.sizeof(attr)),
            ),
            "mount_setattr",
            source,
        )
        attach_tree(fd, target)
    finally:
        os.close(fd)
