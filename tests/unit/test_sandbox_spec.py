"""worker/sandbox: how a container forked from a template finds its layers, binds and devices in
the template's view, and what the seccomp filter denies (installed for real in a child)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from worker.sandbox import seccomp
from worker.sandbox.layout import CODE_DIR, SandboxLayout, shared_binds
from worker.sandbox.spec import PRIVATE_PATH, STAGE_PATH, Bind, SandboxSpec, forked_rooting, mounted_rooting


def _layout(tmp_path: Path, devices: Path) -> SandboxLayout:
    return SandboxLayout(
        rootfs=tmp_path / "rootfs", directory=tmp_path / "sandbox", uid_base=200_000, device_dir=devices
    )


@pytest.fixture
def devices(tmp_path: Path) -> Path:
    directory = tmp_path / "dev"
    directory.mkdir()
    for name in ("null", "zero", "nvidia0", "nvidia1", "nvidiactl"):
        (directory / name).write_text(name)
    return directory


def test_a_forked_container_sees_its_own_state_dir_and_the_templates_layers(tmp_path: Path, devices: Path) -> None:
    layout = _layout(tmp_path, devices)
    layout.gpu_indices = [0, 1]
    template = layout.template("im-0123456789abcdef", image=None)
    container = layout.container("ct-1", None, [1], template)
    assert container.state_dir == template.state_dir / "containers" / "ct-1"
    plan = forked_rooting(container, template)
    assert plan.lowers == [f"{PRIVATE_PATH}/lower/0"]
    assert plan.upper == f"{PRIVATE_PATH}/containers/ct-1/upper"
    assert plan.root == f"{PRIVATE_PATH}/containers/ct-1/root"
    bundle = next(b for b in plan.binds if b.target == CODE_DIR)
    assert bundle.source == f"{PRIVATE_PATH}/containers/ct-1/bundle" and bundle.read_only
    # Host binds the template has are taken from its own view, at their own paths.
    assert all(b.source == b.target for b in plan.binds if b.target != CODE_DIR)
    # Only its own GPU's node, the control node, and the basic nodes the device dir has.
    assert sorted(name for _, name in plan.devices) == ["null", "nvidia1", "nvidiactl", "zero"]
    assert plan.hostname == "ct-1" and plan.seccomp == "container" and plan.private == ""


def test_a_container_cannot_fork_from_a_template_missing_what_it_needs(tmp_path: Path, devices: Path) -> None:
    layout = _layout(tmp_path, devices)
    template = layout.template("im-1", image=None)  # no GPUs on the worker when it started
    with pytest.raises(ValueError, match="no device nodes nvidia0"):
        forked_rooting(layout.container("ct-2", None, [0], template), template)
    outside = SandboxSpec(
        [tmp_path / "rootfs"],
        template.container_dir("ct-3"),
        "ct-3",
        binds=[Bind("/elsewhere", "/x")],
        device_dir=devices,
    )
    with pytest.raises(ValueError, match="not visible"):
        forked_rooting(outside, template)
    with pytest.raises(ValueError, match="layers"):
        forked_rooting(
            SandboxSpec([tmp_path / "other"], template.container_dir("c"), "c", device_dir=devices), template
        )


def test_a_sandbox_started_from_the_host_builds_from_its_stage(tmp_path: Path, devices: Path) -> None:
    spec = _layout(tmp_path, devices).container("ct-4", None, [], None)
    plan = mounted_rooting(spec)
    assert plan.lowers == [f"{STAGE_PATH}/lower/0"] and plan.upper == f"{STAGE_PATH}/upper"
    assert all(source.startswith(STAGE_PATH + "/dev/") for source, _ in plan.devices)
    assert all(b.source.startswith(STAGE_PATH + "/binds/") for b in plan.binds)


def test_the_seccomp_program_is_well_formed() -> None:
    for arch in seccomp.SYSCALLS:
        for profile in ("container", "template"):
            program = seccomp.program(profile, arch)
            assert len(program) < 4096  # the kernel's BPF_MAXINSNS
            assert program[-1] == (seccomp.BPF_RET_K, 0, 0, seccomp.SECCOMP_RET_ALLOW)
            assert all(jt <= 255 and jf <= 255 for _, jt, jf, _ in program)


FILTERED = """
import ctypes, json, os, sys, threading
from worker.sandbox import seccomp
from worker.sandbox.libc import machine
libc = ctypes.CDLL(None, use_errno=True)
seccomp.install(sys.argv[1])
def errno_of(result):
    return 0 if result >= 0 else ctypes.get_errno()
out = {
    "mount": errno_of(libc.mount(b"none", b"/nonexistent", b"tmpfs", 0, None)),
    "unshare_user": errno_of(libc.unshare(0x10000000)),
    "keyctl": errno_of(libc.syscall(seccomp.SYSCALLS[machine()]["keyctl"], 0)),
}
t = threading.Thread(target=lambda: None); t.start(); t.join()  # threads still start (clone3 -> clone)
pid = os.fork()
if pid == 0:
    os._exit(7)
out["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps(out))
"""


@pytest.mark.parametrize("profile", ["container", "template"])
def test_the_filter_denies_with_eperm_and_lets_the_rest_run(profile: str) -> None:
    done = subprocess.run([sys.executable, "-c", FILTERED, profile], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["unshare_user"] == 1 and result["keyctl"] == 1 and result["fork"] == 7
    # A template's children mount their own root; a container may not.
    assert result["mount"] == (1 if profile == "container" else 2)  # EPERM, or ENOENT from the kernel


def test_a_container_on_a_private_network_gets_its_own_resolv_conf_and_hosts(tmp_path: Path, devices: Path) -> None:
    layout = _layout(tmp_path, devices)
    layout.network, layout.resolv_conf = "private", "nameserver 192.0.2.53\n"
    template = layout.template("worker", image=None)
    assert template.network == "host"  # the template serves no one
    container = layout.container("ct-2", None, [], template)
    assert container.network == "private"
    plan = forked_rooting(container, template)
    etc = {b.target: b for b in plan.binds if b.target.startswith("/etc/")}
    assert set(etc) == {"/etc/resolv.conf", "/etc/hosts"} and all(b.read_only for b in etc.values())
    assert etc["/etc/resolv.conf"].source == f"{PRIVATE_PATH}/containers/ct-2/etc/resolv.conf"
    written = container.state_dir / "etc"
    assert (written / "resolv.conf").read_text() == "nameserver 192.0.2.53\n"
    assert "ct-2" in (written / "hosts").read_text()


def test_the_sandbox_network_is_private_by_default_and_refused_without_a_container_network() -> None:
    from worker.config import WorkerConfig
    from worker.server import sandbox_network_mode

    assert WorkerConfig().has_container_network
    assert sandbox_network_mode(WorkerConfig()) == "private"
    assert sandbox_network_mode(WorkerConfig(container_network=False)) == "host"
    assert sandbox_network_mode(WorkerConfig(sandbox_network="host")) == "host"
    assert not WorkerConfig(sandbox_network="host").has_container_network
    assert not WorkerConfig(sandbox_network="none").has_container_network
    assert not WorkerConfig(insecure_no_sandbox=True).has_container_network
    assert WorkerConfig(insecure_no_sandbox=True, container_network=True).has_container_network
    with pytest.raises(ValueError, match="needs a container network"):
        sandbox_network_mode(WorkerConfig(sandbox_network="private", container_network=False))
    with pytest.raises(ValueError, match="use host, none, private"):
        sandbox_network_mode(WorkerConfig(sandbox_network="bridge"))


def test_a_private_sandbox_launched_without_the_workers_handshake_is_refused(tmp_path: Path) -> None:
    from worker.sandbox.launch import spec_to_json

    spec = SandboxSpec(lower_dirs=[tmp_path], state_dir=tmp_path / "s", hostname="x", network="private")
    done = subprocess.run(
        [sys.executable, "-m", "worker.sandbox", spec_to_json(spec), "--", "true"], capture_output=True, text=True
    )
    assert done.returncode == 1 and "a private network needs --network-fd" in done.stderr


def test_a_declared_gpu_without_a_device_node_gives_its_containers_none(tmp_path: Path, devices: Path) -> None:
    layout = _layout(tmp_path, devices)
    assert layout.note_gpus([0, 1, 2]) == [2]  # the device dir has nvidia0 and nvidia1 only
    assert layout.container("ct-1", None, [2], None).devices == []
    assert layout.container("ct-2", None, [1, 2], None).devices[0] == "nvidia1"
    assert "nvidia2" not in layout.template("im-1", image=None).devices


def test_shared_directories_are_bound_read_write_and_bad_ones_refused(tmp_path: Path, devices: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    binds = shared_binds([str(models), f"{models}:/data/models/"])
    assert binds == [
        Bind(str(models), str(models), read_only=False),
        Bind(str(models), "/data/models", read_only=False),
    ]
    layout = _layout(tmp_path, devices)
    layout.shared = binds
    assert set(binds) <= set(layout.container("ct-1", None, [], None).binds)
    for flag, words in (
        ("models", "give absolute paths"),
        (str(tmp_path / "missing"), "is not a directory"),
        (f"{models}:/app/x", "is the sandbox's own"),
        (f"{models}:/proc", "is the sandbox's own"),
    ):
        with pytest.raises(ValueError, match=words):
            shared_binds([flag])
