"""Entering a sandbox's namespaces, for a process that is root in the sandbox's user namespace:
its own mount (when it has none yet), PID, IPC, UTS and, with network "none", network
namespace (a "private" one was made earlier, by whoever told the worker the sandbox's pid: the
worker gives it its address before the sandbox goes on); then a fork, whose child is the
sandbox's PID 1 and goes on into the built root, while the parent stays outside and relays
signals in and the exit status out.
"""

from __future__ import annotations

import os
import signal
from typing import NoReturn

from worker.sandbox import libc, rooting, seccomp
from worker.sandbox.spec import Rooting

# Signals a relaying parent passes on to the sandbox (a template's SIGUSR1 retires it).
RELAYED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def become_root() -> None:
    """In a user namespace whose map was just written: take uid and gid 0 in it, no groups.
    A change of credentials clears the parent-death signal: it is set again after."""
    parent = os.getppid()
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    die_with_parent(parent)


def die_with_parent(parent: int | None = None) -> None:
    """SIGKILL this process when its parent dies (and now, if `parent` is gone already)."""
    libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def enter(plan: Rooting, *, new_mount_namespace: bool) -> None:
    """Enter the namespaces and root of `plan`; returns in the sandbox's PID 1, which should run
    the sandbox's program. The caller's process stays outside as the relay, never returning."""
    flags = libc.CLONE_NEWPID | libc.CLONE_NEWIPC | libc.CLONE_NEWUTS
    if new_mount_namespace:
        flags |= libc.CLONE_NEWNS
    if plan.network == "none":
        flags |= libc.CLONE_NEWNET
    libc.unshare(flags)
    if new_mount_namespace:
        libc.mount("none", "/", None, libc.MS_REC | libc.MS_PRIVATE)
    libc.sethostname(plan.hostname)
    pid = os.fork()
    if pid:
        relay(pid)
    try:
        die_with_parent()  # the relay's death is ours (its pid is 0 from inside our PID namespace)
        for sig in RELAYED:
            signal.signal(sig, signal.SIG_DFL)
        rooting.build_root(plan)
        rooting.pivot(plan)
        if plan.network != "host":
            rooting.loopback_up()
        seccomp.install(plan.seccomp)
    except BaseException as exc:
        os.write(2, f"the sandbox could not be built: {exc}\n".encode())
        os._exit(1)


def relay(child: int) -> NoReturn:
    """Pass signals on to `child` and exit as it does (killed by a signal: by the same one)."""
    signal.set_wakeup_fd(-1)
    for sig in RELAYED:
        signal.signal(sig, lambda number, _frame: _pass_on(child, number))
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            os._exit(1)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number not in (signal.SIGKILL, signal.SIGSTOP):  # their action is fixed (EINVAL to set it)
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
        os._exit(128 + number)
    os._exit(os.waitstatus_to_exitcode(status))


def _pass_on(child: int, number: int) -> None:
    try:
        os.kill(child, number)
    except ProcessLookupError:
        pass
