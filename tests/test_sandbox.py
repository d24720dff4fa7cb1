"""Each container in its own sandbox (worker/sandbox/): clusters as `stoker up` starts them (a
container with no image rooted in the default Debian root the worker builds at start, or in
`--sandbox-rootfs`) serve apps from forked and fresh containers, and a container finds nothing
of the cluster, is root only inside (an unprivileged uid range outside), has its own hostname and PID 1, cannot
mount or make user namespaces, and sees only its own GPUs' device nodes. A worker that cannot
build sandboxes refuses to start with one line, unless told `--insecure-no-sandbox`.

Real namespaces and mounts: these tests run as root, as CI does. `--sandbox-rootfs` gets a
minimal Debian (the session's default root, or STOKER_TEST_ROOTFS).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_DIR, Cluster, LineReader, base_env, running_cluster, stoker_command, wait_until

OWN_VALUE = "own-s3cret-5a7c"
UID_BASE = 100_000


@pytest.fixture(scope="session")
def sandbox_rootfs(debian_rootfs: Path) -> Path:
    return debian_rootfs


def _sandboxed(rootfs: Path, **env: str) -> dict[str, str]:
    return {"STOKER_SANDBOX_ROOTFS": str(rootfs), **env}


def _host_view_of(pid_ns: str) -> list[dict[str, str]]:
    """From the host: /proc/PID/status of the processes in the PID namespace `pid_ns`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns" / "pid") != pid_ns:
                continue
            lines = (entry / "status").read_text().splitlines()
        except OSError:
            continue  # exited meanwhile
        found.append(dict(line.split(":\t", 1) for line in lines if ":\t" in line))
    return found


def _probe(cluster: Cluster, paths: list[str]) -> dict[str, Any]:
    url = cluster.deploy("sandbox_probe.py")["probe"]
    response = cluster.get(url, params={"paths": json.dumps(paths)})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


@pytest.fixture(scope="module", params=[True, False], ids=["forked", "fresh"])
def sandboxed_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    env = {} if request.param else {"STOKER_WORKER_FORK": "0"}  # the default root, as `stoker up` has it
    with running_cluster(tmp_path_factory.mktemp("sandboxed"), **env) as cluster:
        made = cluster.stoker("secret", "create", "probe-secret", f"PROBE_VALUE={OWN_VALUE}")
        assert made.returncode == 0, made.stderr
        yield cluster


def test_a_sandboxed_cluster_serves_the_quickstart(sandboxed_cluster: Cluster) -> None:
    urls = sandboxed_cluster.deploy("seed_quickstart.py")
    response = sandboxed_cluster.get(urls["hello"])
    assert response.status_code == 200, response.text
    assert response.json() == "Hello world!"


def test_a_container_finds_nothing_of_the_cluster(sandboxed_cluster: Cluster) -> None:
    cluster = sandboxed_cluster
    cluster_secret = (cluster.state_dir / "cluster-secret").read_text().strip()
    workspace_token = (cluster.state_dir / "workspace-token").read_text().strip()
    # Another container running beside it, whose files it must not see.
    assert cluster.get(cluster.deploy("seed_quickstart.py")["hello"]).status_code == 200
    work_dir = cluster.state_dir / "worker"
    others = [str(p) for p in (work_dir / "sandbox").glob("**/ct-*") if p.is_dir()]
    assert others, "the other container's state dir is on the host"
    secret_paths = [
        str(cluster.state_dir),
        str(cluster.state_dir / "cluster-secret"),
        str(cluster.state_dir / "workspace-token"),
        str(cluster.state_dir / "stoker.db"),
        str(cluster.home / ".stoker" / "config.json"),
        str(cluster.home / ".stoker"),
        str(work_dir),
        *others,
    ]
    found = _probe(cluster, secret_paths)

    assert found["reached"] == dict.fromkeys(secret_paths), "a path of the cluster was reachable"
    assert ".stoker-sandbox" not in found["root"]  # a template's private path stays in the template
    hidden = (cluster_secret, workspace_token)
    env = found["os_environ"]
    assert env["PROBE_VALUE"] == OWN_VALUE and env["STOKER_TOKEN"].startswith("call.")
    assert "STOKER_CLUSTER_SECRET" not in env
    assert env["HOME"] == "/root"  # the image's home, not the worker's
    readable = {pid: text for pid, text in found["environs"].items() if text is not None}
    assert str(found["pid"]) in readable  # the scan works: it reads its own
    assert [pid for pid, text in readable.items() if any(h in text for h in hidden)] == []


def test_inside_a_container_is_root_of_its_own_namespaces_only(sandboxed_cluster: Cluster) -> None:
    found = _probe(sandboxed_cluster, [])
    containers = [c for c in sandboxed_cluster.status().containers if c.app_name == "sandbox-probe"]
    assert found["hostname"] in {c.container_id for c in containers}  # its hostname: its id
    assert found["pid"] == 1  # the container's process is its PID namespace's init
    forked = sandboxed_cluster.extra_env.get("STOKER_WORKER_FORK") != "0"
    assert ("worker.runtime.template" in found["pid1_cmdline"]) == forked  # a fork keeps the template's argv
    assert found["uid"] == 0
    assert found["cwd"] == "/app" and found["write_tmp"] and found["write_etc"]  # its own layer
    # From the host: in that PID namespace, uid 0 inside is the unprivileged range outside, and
    # nothing of it has a capability in the host's user namespace.
    outside = _host_view_of(found["pid_ns"])
    assert outside, "the host sees the container's processes"
    for status in outside:
        real, effective, saved, fs = (int(u) for u in status["Uid"].split())
        assert real == effective == saved == fs == UID_BASE
        assert int(status["Gid"].split()[0]) == UID_BASE
        assert status["NSpid"].split()[-1] in {"1", *(str(n) for n in range(2, 50))}
    assert any(status["NSpid"].split()[-1] == "1" for status in outside)
    # No new mounts nor user namespaces (seccomp: EPERM), from Python and from the tools.
    assert found["mount_errno"] == 1 and found["unshare_errno"] == 1
    assert found["mount_cmd"]["code"] != 0 and found["unshare_cmd"]["code"] != 0
    assert "Operation not permitted" in found["unshare_cmd"]["stderr"]
    # A minimal /dev; nothing of the host's disks or consoles.
    assert set(found["dev"]) >= {"null", "zero", "full", "random", "urandom", "pts", "shm"}
    assert not [name for name in found["dev"] if name.startswith(("vd", "sd", "nvme", "loop", "tty0", "kmsg"))]


def test_a_gpu_container_sees_only_its_own_device_nodes(tmp_path: Path, sandbox_rootfs: Path) -> None:
    devices = tmp_path / "dev"
    devices.mkdir()
    for name in ("null", "zero", "full", "random", "urandom"):
        real = os.stat(f"/dev/{name}")
        os.mknod(devices / name, 0o666 | 0o020000, real.st_rdev)  # the same character devices
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"):
        (devices / name).write_text(f"fake {name}")
        (devices / name).chmod(0o666)
    env = _sandboxed(sandbox_rootfs, STOKER_WORKER_GPUS="A10G:24,A10G:24", STOKER_SANDBOX_DEVICE_DIR=str(devices))
    (tmp_path / "cluster").mkdir()
    with running_cluster(tmp_path / "cluster", **env) as cluster:
        assert cluster.stoker("secret", "create", "probe-secret", "PROBE_VALUE=x").returncode == 0
        response = cluster.get(cluster.deploy("sandbox_probe.py")["gpu"])
    assert response.status_code == 200, response.text
    found = response.json()
    index = found["cuda"]
    assert index in ("0", "1")
    assert found["gpu_nodes"] == {
        f"nvidia{index}": f"fake nvidia{index}",
        "nvidiactl": "fake nvidiactl",
        "nvidia-uvm": "fake nvidia-uvm",
    }
    assert "tty" not in found["dev"]  # not in the substituted device dir: not in the sandbox


def _worker(tmp_path: Path, rootfs: Path, *extra: str, wrap: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    work_dir = tmp_path / "work"
    work_dir.mkdir(mode=0o777, exist_ok=True)
    work_dir.chmod(0o777)
    tmp_path.chmod(0o755)
    env = {**base_env(tmp_path), "STOKER_SCHEDULER": "127.0.0.1:9", "STOKER_WORK_DIR": str(work_dir)}
    command = [*wrap, *stoker_command("worker", "--sandbox-rootfs", str(rootfs), *extra)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


@pytest.mark.parametrize(
    ("wrap", "why"),
    [
        (NOBODY, "it is not root"),
        (("unshare", "--user", "--map-root-user"), "it cannot give the sandbox's files to its host uid range"),
    ],
    ids=["not-root", "root-of-a-user-namespace-only"],
)
def test_a_worker_that_cannot_build_sandboxes_refuses_to_start(
    tmp_path: Path, sandbox_rootfs: Path, wrap: tuple[str, ...], why: str
) -> None:
    worker = _worker(tmp_path, sandbox_rootfs, wrap=wrap)
    output, _ = worker.communicate(timeout=60)
    assert worker.returncode != 0
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("the worker cannot build sandboxes: " + why), output
    assert "--insecure-no-sandbox" in lines[0]


def test_insecure_no_sandbox_starts_with_a_warning(tmp_path: Path, sandbox_rootfs: Path) -> None:
    worker = _worker(tmp_path, sandbox_rootfs, "--insecure-no-sandbox", wrap=NOBODY)
    try:
        assert worker.stdout is not None
        reader = LineReader(worker.stdout)
        line = reader.wait_for(lambda text: "--insecure-no-sandbox" in text, 60)
        assert "WARNING" in line and "containers run on this host" in line
        assert worker.poll() is None  # it runs
    finally:
        worker.terminate()
        worker.wait(30)


def test_the_sandbox_tests_run_as_root() -> None:
    # Everything above needs host root (idmapped mounts, uid maps): say so rather than skip.
    assert os.geteuid() == 0, f"{sys.argv[0]}: run these tests as root"


@pytest.mark.parametrize("sandboxed_cluster", [True], ids=["forked"], indirect=True)
def test_a_memory_snapshot_forks_sandboxed_containers(sandboxed_cluster: Cluster) -> None:
    response = sandboxed_cluster.get(sandboxed_cluster.deploy("sandbox_snapshot.py")["Snapped.info"])
    assert response.status_code == 200, response.text
    found = response.json()
    containers = {c.container_id for c in sandboxed_cluster.status().containers if c.app_name == "sandbox-snapshot"}
    assert found["hostname"] in containers and found["snapped_on"] not in containers  # the template's own
    assert found["pid"] == 1 and found["snapped_pid"] == 1  # each its own PID namespace's init
    # Its own /tmp, not the template's: empty, but for the mount points of the host paths bound at
    # their own paths (the interpreter, the venv, the stoker source and the test session's shared
    # directory), when those are under /tmp.
    bound = [Path(p).resolve() for p in (sys.base_prefix, sys.prefix, Path(__file__).parent.parent, SHARED_DIR)]
    under_tmp = sorted({p.relative_to("/tmp").parts[0] for p in bound if p.is_relative_to("/tmp")})
    assert found["cwd"] == "/app" and found["tmp"] == under_tmp
    assert ".stoker-sandbox" not in found["root"]


def test_a_stopped_container_exits_cleanly_and_leaves_nothing(sandboxed_cluster: Cluster) -> None:
    found = _probe(sandboxed_cluster, [])
    container_id = found["hostname"]
    state_dirs = list((sandboxed_cluster.state_dir / "worker" / "sandbox").glob(f"**/{container_id}"))
    assert state_dirs and _host_view_of(found["pid_ns"])
    assert sandboxed_cluster.stoker("app", "stop", "sandbox-probe").returncode == 0
    # SIGTERM reached its PID 1 through the relays; it drained and exited 0, which the worker saw.
    assert wait_until(lambda: not _host_view_of(found["pid_ns"]), 30), "its processes are gone"
    assert wait_until(lambda: not any(p.exists() for p in state_dirs), 30), "its state dir is removed"
    assert sandboxed_cluster.output is not None
    assert f"container {container_id} exited with code" not in sandboxed_cluster.output.text()
