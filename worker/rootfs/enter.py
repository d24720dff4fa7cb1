"""Start a process inside an image: `python -I -m worker.rootfs.enter SPEC -- ARGV...`.

SPEC (JSON, see `Enter`) names the image's layers (lowest first) and a writable upper directory:
this process enters a new user, mount and PID namespace, mounts an overlay of them as the root,
a fresh /proc, a minimal /dev, a private /tmp, the host's /etc/resolv.conf and the bind mounts
asked for, chroots there and runs ARGV as root inside, on the host's network. Image builds use it
with a layer as the upper (worker/rootfs/steps.py), containers with a directory of their own.

The process that runs this module stays outside the new PID namespace, waits for ARGV's process
(PID 1 inside) and passes the signals it gets on to it, so that whoever started it can stop it
as any child; its exit status is ARGV's (the sandbox's relay, worker/sandbox/enter.py). The
namespace and mount calls are the sandbox's (worker/sandbox/libc.py: Python 3.11 has no
os.unshare). The user namespace maps host uids 0-65535 to themselves when started by root (files
a step creates keep their owners, apt can drop to _apt), else the caller's uid to root.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from worker.sandbox import libc
from worker.sandbox.enter import RELAYED, relay
from worker.sandbox.rooting import bind_mount
from worker.sandbox.spec import Bind  # one kind of bind mount, for sandboxes and image launches alike

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
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
    libc.unshare(libc.CLONE_NEWUSER | libc.CLONE_NEWNS | (libc.CLONE_NEWPID if pid_namespace else 0))
    os.write(ready_w, b"x")
    os.close(ready_w)
    _, status = os.waitpid(helper, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise OSError("could not write the user namespace's uid and gid maps")


def _mount_root(spec: Enter) -> None:
    root = spec.root
    libc.mount("none", "/", None, libc.MS_REC | libc.MS_PRIVATE)  # nothing mounted here reaches the host
    # overlayfs lists the top layer first. Its options fit in a page: the layers are named
    # relative to the directory that holds them (the mount resolves them against ours).
    holder = os.path.commonpath(spec.lower) if len(spec.lower) > 1 else ""
    if holder and os.path.isdir(holder):
        os.chdir(holder)
        lower = ":".join(os.path.relpath(layer, holder) for layer in reversed(spec.lower))
    else:
        lower = ":".join(reversed(spec.lower))
    # userxattr: an unprivileged overlay keeps whiteouts and opaque directories in user.* xattrs.
    libc.mount("overlay", root, "overlay", 0, f"lowerdir={lower},upperdir={spec.upper},workdir={spec.work},userxattr")
    if spec.pid_namespace:
        libc.mount("proc", f"{root}/proc", "proc", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)
    else:
        libc.mount("/proc", f"{root}/proc", None, libc.MS_BIND | libc.MS_REC)
    _minimal_dev(f"{root}/dev")
    libc.mount("tmpfs", f"{root}/tmp", "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, "mode=1777")
    resolv = f"{root}/etc/resolv.conf"
    if os.path.exists("/etc/resolv.conf") and (os.path.isfile(resolv) or not os.path.lexists(resolv)):
        bind_mount("/etc/resolv.conf", resolv, read_only=True, recursive=True)
    for bind in spec.binds:
        bind_mount(bind.source, root + bind.target, read_only=bind.read_only, recursive=True)


def _minimal_dev(dev: str) -> None:
    os.makedirs(dev, exist_ok=True)
    libc.mount("tmpfs", dev, "tmpfs", libc.MS_NOSUID, "mode=755")
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            bind_mount(f"/dev/{name}", f"{dev}/{name}", read_only=False, recursive=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "fd/0"), ("stdout", "fd/1"), ("stderr", "fd/2")):
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/pts")
    try:  # terminals for what wants one (apt logs its run through a pty)
        pts_options = "newinstance,ptmxmode=0666,mode=620"
        libc.mount("devpts", f"{dev}/pts", "devpts", libc.MS_NOSUID | libc.MS_NOEXEC, pts_options)
        os.symlink("pts/ptmx", f"{dev}/ptmx")
    except OSError:
        pass
    os.mkdir(f"{dev}/shm")
    libc.mount("tmpfs", f"{dev}/shm", "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, "mode=1777")


def _die_with_parent(parent: int) -> None:
    """What runs inside ends with whoever started it, even when that one is killed outright (a
    worker's SIGKILL must not leave its fork templates running)."""
    libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above
        os._exit(EXIT_SETUP_FAILED)


def _become(spec: Enter, program: list[str]) -> None:
    """PID 1 inside: mount the root, enter it and run the program (never returns)."""
    try:
        _mount_root(spec)
        os.chroot(spec.root)
        os.makedirs(spec.cwd, exist_ok=True)
        os.chdir(spec.cwd)
        for sig in RELAYED:
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
    relay(child)  # never returns: exits as the program did


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
