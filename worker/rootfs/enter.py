"""Start a process inside an image: `python -I -m worker.rootfs.enter SPEC -- ARGV...`.

SPEC (JSON, see `Enter`) names the image's layers (lowest first) and a writable upper directory:
this process enters a new user, mount and PID namespace, mounts an overlay of them as the root,
a fresh /proc, a minimal /dev, a private /tmp, the host's /etc/resolv.conf and the bind mounts
asked for, chroots there and runs ARGV as root inside, on the host's network. Image builds use it
with a layer as the upper (worker/rootfs/steps.py), containers with a directory of their own.

The process that runs this module stays outside the new PID namespace, waits for ARGV's process
(PID 1 inside) and passes the signals it gets on to it, so that whoever started it can stop it
as any child; its exit status is ARGV's. The namespaces come from ctypes calls on libc (Python 3.11 has no
os.unshare). The user namespace maps host uids 0-65535 to themselves when started by root
(files a step creates keep their owners, apt can drop to _apt), else the caller's uid to root.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from worker.sandbox.spec import Bind  # one kind of bind mount, for sandboxes and image launches alike

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
# statvfs flags of a bind mount that a remount in a user namespace must keep (they are locked).
_LOCKED = {2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME, 2048: MS_NODIRATIME, 4096: MS_RELATIME}
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
PR_SET_PDEATHSIG = 1
ID_RANGE = 65536
EXIT_SETUP_FAILED = 125  # as `env` and container runtimes: the program never ran


@dataclass
class Enter:
    lower: list[str]  # the image's layers, lowest first
    upper: str  # receives what the process writes (a layer being built, or a container's own)
    work: str  # overlayfs's work directory: empty, on the upper's filesystem
    root: str  # an empty directory to mount the root on
    cwd: str = "/"  # inside; created when missing
    binds: list[Bind] = field(default_factory=list)
    # False: the host's PID namespace and its /proc. For fork templates: the pids they report
    # for the containers they fork must be the worker's (it signals them), and a forked
    # container must not find its parent to be PID 1 (it takes that for its parent's death).
    pid_namespace: bool = True

    def argv(self, program: list[str]) -> list[str]:
        """The command line that runs `program` inside (with the worker's own interpreter)."""
        return [sys.executable, "-I", "-m", "worker.rootfs.enter", json.dumps(asdict(self)), "--", *program]

    @staticmethod
    def parse(text: str) -> Enter:
        raw = json.loads(text)
        raw["binds"] = [Bind(**b) for b in raw.get("binds", [])]
        return Enter(**raw)


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode() if source is not None else None,
            target.encode(),
            fstype.encode() if fstype is not None else None,
            flags,
            data.encode() if data is not None else None,
        ),
        f"mount {fstype or source} on {target}",
    )


def _unshare_with_ids(pid_namespace: bool) -> None:
    """Enter new user, mount and PID namespaces; a helper outside writes the uid and gid maps
    (only a process in the parent namespace may map more than its own uid)."""
    uid, gid = os.getuid(), os.getgid()
    ready_r, ready_w = os.pipe()
    me = os.getpid()
    helper = os.fork()
    if helper == 0:
        try:
            os.close(ready_w)
            os.read(ready_r, 1)
            if uid == 0:
                maps = {"uid_map": f"0 0 {ID_RANGE}", "gid_map": f"0 0 {ID_RANGE}"}
            else:
                Path(f"/proc/{me}/setgroups").write_text("deny")
                maps = {"uid_map": f"0 {uid} 1", "gid_map": f"0 {gid} 1"}
            for name, line in maps.items():
                Path(f"/proc/{me}/{name}").write_text(line)
            os._exit(0)
        except BaseException:
            os._exit(1)
    os.close(ready_r)
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | (CLONE_NEWPID if pid_namespace else 0)), "unshare")
    os.write(ready_w, b"x")
    os.close(ready_w)
    _, status = os.waitpid(helper, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError("could not write the user namespace's uid and gid maps")


def _mount_root(spec: Enter) -> None:
    root = spec.root
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here reaches the host
    # overlayfs lists the top layer first. Its options fit in a page: the layers are named
    # relative to the directory that holds them (the mount resolves them against ours).
    holder = os.path.commonpath(spec.lower) if len(spec.lower) > 1 else ""
    if holder and os.path.isdir(holder):
        os.chdir(holder)
        lower = ":".join(os.path.relpath(layer, holder) for layer in reversed(spec.lower))
    else:
        lower = ":".join(reversed(spec.lower))
    # userxattr: an unprivileged overlay keeps whiteouts and opaque directories in user.* xattrs.
    _mount("overlay", root, "overlay", 0, f"lowerdir={lower},upperdir={spec.upper},workdir={spec.work},userxattr")
    if spec.pid_namespace:
        _mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    else:
        _mount("/proc", f"{root}/proc", None, MS_BIND | MS_REC)
    _minimal_dev(f"{root}/dev")
    _mount("tmpfs", f"{root}/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    resolv = f"{root}/etc/resolv.conf"
    if os.path.exists("/etc/resolv.conf") and (os.path.isfile(resolv) or not os.path.lexists(resolv)):
        _bind("/etc/resolv.conf", resolv, read_only=True)
    for bind in spec.binds:
        _bind(bind.source, root + bind.target, bind.read_only)


def _minimal_dev(dev: str) -> None:
    os.makedirs(dev, exist_ok=True)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            _bind(f"/dev/{name}", f"{dev}/{name}", read_only=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "fd/0"), ("stdout", "fd/1"), ("stderr", "fd/2")):
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/pts")
    try:  # terminals for what wants one (apt logs its run through a pty)
        _mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
        os.symlink("pts/ptmx", f"{dev}/ptmx")
    except OSError:
        pass
    os.mkdir(f"{dev}/shm")
    _mount("tmpfs", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")


def _bind(source: str, target: str, read_only: bool) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    elif not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(source, target, None, MS_BIND | MS_REC)
    if read_only:
        flags = os.statvfs(target).f_flag
        locked = sum(ms for st, ms in _LOCKED.items() if flags & st)
        _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | locked)


def _die_with_parent(parent: int) -> None:
    """What runs inside ends with whoever started it, even when that one is killed outright (a
    worker's SIGKILL must not leave its fork templates running)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above
        os._exit(EXIT_SETUP_FAILED)


def _become(spec: Enter, program: list[str]) -> None:
    """PID 1 inside: mount the root, enter it and run the program (never returns)."""
    try:
        _mount_root(spec)
        os.chroot(spec.root)
        os.makedirs(spec.cwd, exist_ok=True)
        os.chdir(spec.cwd)
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        os.execvpe(program[0], program, os.environ)
    except OSError as exc:
        print(f"stoker: cannot start {program[0]!r} in the image: {exc}", file=sys.stderr, flush=True)
    os._exit(EXIT_SETUP_FAILED)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m worker.rootfs.enter SPEC -- PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    spec = Enter.parse(argv[0])
    program = argv[2:]
    _die_with_parent(os.getppid())
    try:
        _unshare_with_ids(spec.pid_namespace)
    except OSError as exc:
        print(f"stoker: cannot enter the image's namespaces: {exc}", file=sys.stderr, flush=True)
        return EXIT_SETUP_FAILED
    me = os.getpid()
    child = os.fork()  # the first child in the new PID namespace (if any): its PID 1
    if child == 0:
        _die_with_parent(me if not spec.pid_namespace else 0)  # a parent outside the namespace reads as 0
        _become(spec, program)
    for sig in FORWARDED:
        signal.signal(sig, lambda number, _: os.kill(child, number))
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            return EXIT_SETUP_FAILED
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)  # end as it did: a stop reads as the signal it was
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
