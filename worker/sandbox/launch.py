"""Start a program in a new sandbox from the host: `python -m worker.sandbox SPEC -- PROGRAM...`.

The launcher runs as host root. It forks the sandbox's first process, which makes its user and
mount namespaces and waits; the launcher writes that namespace's uid and gid maps (0..65535
inside -> the spec's unprivileged range outside: a process inside has no capability on the
host), joins its mount namespace to mount what needs host privileges under the sandbox's state
dir (the image layers as idmapped mounts, so that files owned by root on disk are owned by the
sandbox's root; the binds; the device nodes), and lets it go on: it enters the remaining
namespaces and the root (worker/sandbox/enter.py), and its PID 1 execs PROGRAM. The launcher
stays as the relay the worker sees: signals in, exit status out.

With network "private" the first process makes its network namespace with its user namespace
(so that the sandbox's root manages it), and the launcher, given `--network-fd FD`, writes that
process's pid on FD and waits for a byte back before letting it go on: meanwhile the worker
gives the namespace its address (worker/network/). `python -m worker.sandbox --network-fd FD
SPEC -- PROGRAM...`
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from worker.sandbox import enter, libc
from worker.sandbox.spec import (
    BASIC_DEVICES,
    ID_COUNT,
    NVIDIA_CONTROL_DEVICES,
    STAGE_PATH,
    Bind,
    SandboxSpec,
    mount_points,
    mounted_rooting,
)

CHECK = "--check"  # `python -m worker.sandbox --check STATE_DIR`: build a trial sandbox, exit 0 inside
NETWORK_FD = "--network-fd"  # the worker's end of the network handshake ("private" network)


def spec_to_json(spec: SandboxSpec) -> str:
    return json.dumps(asdict(spec), default=str)


def spec_from_json(text: str) -> SandboxSpec:
    raw: dict[str, Any] = json.loads(text)
    raw["lower_dirs"] = [Path(p) for p in raw["lower_dirs"]]
    raw["state_dir"] = Path(raw["state_dir"])
    raw["device_dir"] = Path(raw["device_dir"])
    raw["binds"] = [Bind(**b) for b in raw["binds"]]
    return SandboxSpec(**raw)


def launcher_command(spec: SandboxSpec, program: list[str], network_fd: int | None = None) -> list[str]:
    """The command line that runs `program` in a new sandbox of `spec`; with `network_fd`, the
    launcher tells the sandbox's pid on it and waits for a byte back (the network handshake)."""
    handshake = [NETWORK_FD, str(network_fd)] if network_fd is not None else []
    return [sys.executable, "-m", "worker.sandbox", *handshake, spec_to_json(spec), "--", *program]


def prepare(spec: SandboxSpec) -> None:
    """Make the state dir's mount points; the writable layer belongs to the sandbox's root."""
    for path in (spec.upper_dir, spec.work_dir):
        path.mkdir(parents=True, exist_ok=True)
        try:
            os.chown(path, spec.uid_base, spec.uid_base)
        except OSError as exc:
            raise OSError(exc.errno, f"chown({path}, {spec.uid_base}): {exc.strerror}") from None
    spec.root_dir.mkdir(exist_ok=True)
    lowers, binds, devices = mount_points(spec)
    for _, point in lowers:
        point.mkdir(parents=True, exist_ok=True)
    for bind, point in binds:
        _mount_point(Path(bind.source), point)
    for name, point in devices:
        _mount_point(spec.device_dir / name, point)


def _mount_point(source: Path, point: Path) -> None:
    point.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        point.mkdir(exist_ok=True)
    else:
        point.touch(exist_ok=True)


def write_id_maps(pid: int, uid_base: int) -> None:
    for name in ("uid_map", "gid_map"):
        Path(f"/proc/{pid}/{name}").write_text(f"0 {uid_base} {ID_COUNT}\n")


def mount_host_paths(spec: SandboxSpec, userns_fd: int) -> None:
    """In the sandbox's mount namespace, as host root: what only the host's root may mount."""
    lowers, binds, devices = mount_points(spec)
    for lower, point in lowers:
        libc.idmapped_bind(str(lower), str(point), userns_fd, read_only=True)
    for bind, point in binds:
        libc.mount(bind.source, str(point), None, libc.MS_BIND | libc.MS_REC)
    for name, point in devices:
        libc.mount(str(spec.device_dir / name), str(point), None, libc.MS_BIND)
    # Then all of it at STAGE_PATH, on a tmpfs of this namespace's own: the state dir's parents
    # on the host may be closed to the sandbox's root.
    tree = libc.clone_tree(str(spec.state_dir), recursive=True)
    try:
        libc.mount("tmpfs", "/tmp", "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, "mode=755,size=16k")
        os.mkdir(STAGE_PATH)
        libc.attach_tree(tree, STAGE_PATH)
    finally:
        os.close(tree)


def present_devices(spec: SandboxSpec) -> SandboxSpec:
    """`spec`, once its GPUs' nodes are known to be there (the basic and NVIDIA control nodes a
    device dir lacks are left out: spec.mount_points)."""
    optional = set(BASIC_DEVICES) | set(NVIDIA_CONTROL_DEVICES)
    missing = [name for name in spec.devices if name not in optional and not (spec.device_dir / name).exists()]
    if missing:
        raise FileNotFoundError(f"no device {', '.join(missing)} in {spec.device_dir}")
    return spec


def network_handshake(fd: int, pid: int) -> None:
    """Tell the worker the pid in the sandbox's network namespace; wait until it attached it."""
    os.write(fd, f"{pid}\n".encode())
    if os.read(fd, 1) != b"1":
        raise OSError("the worker did not give the sandbox its network")
    os.close(fd)


def launch(spec: SandboxSpec, program: list[str], network_fd: int | None = None) -> NoReturn:
    try:
        prepare(spec)
    except OSError as exc:
        sys.exit(f"the sandbox could not be built: {exc}")
    plan = mounted_rooting(spec)
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(to_child_w)
        os.close(to_parent_r)
        try:
            libc.prctl(libc.PR_SET_PDEATHSIG, 9)  # the launcher's death is the sandbox's
            if network_fd is not None:
                os.close(network_fd)
            own_network = libc.CLONE_NEWNET if spec.network == "private" else 0
            libc.unshare(libc.CLONE_NEWUSER | libc.CLONE_NEWNS | own_network)
            libc.mount("none", "/", None, libc.MS_REC | libc.MS_PRIVATE)  # nothing propagates out
            os.write(to_parent_w, b"1")
            if os.read(to_child_r, 1) != b"1":
                os._exit(1)  # the launcher said why
            os.close(to_child_r)
            os.close(to_parent_w)
            enter.become_root()
            enter.enter(plan, new_mount_namespace=False)
            if program == [CHECK]:
                os._exit(0)  # built: namespaces, idmapped layer, overlay, /proc, pivot_root, seccomp
            os.execvp(program[0], program)
        except BaseException as exc:
            os.write(2, f"the sandbox could not be built: {exc}\n".encode())
        os._exit(1)
    os.close(to_child_r)
    os.close(to_parent_w)
    try:
        if os.read(to_parent_r, 1) != b"1":
            raise OSError("the sandbox's first process exited before its namespaces were made")
        write_id_maps(pid, spec.uid_base)
        userns_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY)
        mntns_fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)
        libc.setns(mntns_fd, libc.CLONE_NEWNS)
        mount_host_paths(spec, userns_fd)
        os.close(userns_fd)
        os.close(mntns_fd)
        if network_fd is not None:
            network_handshake(network_fd, pid)
        os.write(to_child_w, b"1")
    except BaseException as exc:
        os.write(2, f"the sandbox could not be built: {exc}\n".encode())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
        os._exit(1)
    os.close(to_child_w)
    os.close(to_parent_r)
    enter.relay(pid)


def trial(state_dir: Path) -> NoReturn:
    """Build a sandbox of an empty layer, with every piece a container's has, and exit in it."""
    import shutil

    shutil.rmtree(state_dir, ignore_errors=True)
    (state_dir / "layer").mkdir(parents=True)
    spec = SandboxSpec(lower_dirs=[state_dir / "layer"], state_dir=state_dir / "sandbox", hostname="preflight")
    launch(present_devices(spec), [CHECK])


def main(argv: list[str]) -> NoReturn:
    if len(argv) == 2 and argv[0] == CHECK:
        trial(Path(argv[1]))
    network_fd = None
    if len(argv) > 2 and argv[0] == NETWORK_FD and argv[1].isdigit():
        network_fd, argv = int(argv[1]), argv[2:]
    if len(argv) < 3 or argv[1] != "--":
        sys.exit(f"usage: python -m worker.sandbox [{NETWORK_FD} FD] SPEC_JSON -- PROGRAM [ARGS...]")
    try:
        spec = present_devices(spec_from_json(argv[0]))
    except (ValueError, TypeError, KeyError, FileNotFoundError) as exc:
        sys.exit(f"the sandbox could not be built: {exc}")
    if spec.network == "private" and network_fd is None:
        sys.exit(f"the sandbox could not be built: a private network needs {NETWORK_FD} (the worker's handshake)")
    libc.prctl(libc.PR_SET_PDEATHSIG, 9)  # die with the worker
    launch(spec, argv[2:], network_fd)
