"""cgroup limits on a real cluster: memory past its limit kills the container and says so to
its caller and in `stoker app logs`; the limits and the pids limit are where the container's
process is; its cgroup goes when it exits; a restarted worker removes what a previous run left.

Real cgroups: on this machine v1 controllers beside an empty cgroup2, whose cgroups still take
processes, so the v2 half is tested here without limits (the last test) and its files in
tests/unit/test_cgroup_files.py. Needs root and writable cgroups: skipped otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    Cluster,
    LineReader,
    alive,
    base_env,
    host_pid,
    live_worker_pid,
    run_program,
    running_cluster,
    stoker_command,
    stop_process,
    wait_until,
)
from worker import cgroups
from worker.cgroups.layout import Hierarchy, Layout, parse_mountinfo

PIDS_LIMIT = 48


def usable_layout() -> Layout:
    try:
        cgroups.check()
        return cgroups.detect()
    except cgroups.CgroupsUnusable as exc:
        pytest.skip(f"cgroups are unusable here: {exc}")


@pytest.fixture(scope="module")
def layout() -> Layout:
    return usable_layout()


@pytest.fixture(scope="module")
def worker_id() -> str:
    return f"cgtest-{uuid.uuid4().hex[:8]}"  # ours alone: parallel runs never meet in /sys/fs/cgroup


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, layout: Layout, worker_id: str) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path_factory.mktemp("cgroups"), STOKER_WORKER_ID=worker_id, STOKER_CONTAINER_PIDS_LIMIT=str(PIDS_LIMIT)
    ) as cluster:
        cluster.deploy("cgroup_limits.py")
        yield cluster


def parents(layout: Layout, worker_id: str) -> dict[str, Path]:
    """The worker's parent cgroup in each controller's hierarchy, by controller."""
    found = {}
    for controller in ("cpu", "memory", "pids"):
        top = layout.hierarchy_of(controller).mount / "stoker"
        matches = [p for p in top.iterdir() if p.name.startswith(f"{worker_id}-")] if top.is_dir() else []
        assert len(matches) == 1, f"{controller}: {matches}"
        found[controller] = matches[0]
    return found


def call(cluster: Cluster, function: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_program(
        cluster,
        """
        import json, sys
        import client as modal

        fn = modal.Function.from_name("cgroup-limits", sys.argv[1])
        try:
            print(json.dumps({"result": fn.remote(*map(int, sys.argv[2:]))}))
        except Exception as exc:
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        """,
        function,
        *args,
    )


def outcome(cluster: Cluster, function: str, *args: str) -> dict[str, object]:
    result = call(cluster, function, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_a_function_over_its_memory_limit_is_killed_and_its_caller_and_logs_say_so(limited: Cluster) -> None:
    assert outcome(limited, "hog", "64") == {"result": 64}, "under its limit, it runs"
    over = outcome(limited, "hog", "400")
    assert "error" in over, over
    assert "ran out of memory at 256 MiB" in str(over["error"])

    def logs_say_so() -> bool:
        logs = limited.stoker("app", "logs", "cgroup-limits")
        return "ran out of memory at 256 MiB" in logs.stdout

    assert wait_until(logs_say_so, 30), limited.stoker("app", "logs", "cgroup-limits").stdout
    assert outcome(limited, "hog", "64") == {"result": 64}, "a new container serves the next call"


def cgroup_dir(layout: Layout, seen: dict[str, str], controller: str) -> Path:
    """The directory of `controller`'s cgroup that /proc/<pid>/cgroup (`seen`) names."""
    hierarchy = layout.hierarchy_of(controller)
    key = next(k for k in seen if controller in k.split(",")) if hierarchy.version == 1 else ""
    return hierarchy.mount / seen[key].lstrip("/")


def test_a_container_runs_in_its_own_cgroup_with_its_limits(limited: Cluster, layout: Layout, worker_id: str) -> None:
    seen = outcome(limited, "own_cgroup")["result"]
    assert isinstance(seen, dict)
    directories = {c: cgroup_dir(layout, seen, c) for c in ("cpu", "memory", "pids")}
    for controller, parent in parents(layout, worker_id).items():
        directory = directories[controller]
        assert directory.parent == parent, f"{controller}: {directory} is not under its worker's {parent}"
        assert str(host_pid(seen["pid"])) in (directory / "cgroup.procs").read_text().split()

    def read(controller: str, name: str) -> str:
        return (directories[controller] / name).read_text().strip()

    if layout.hierarchy_of("memory").version == 1:
        assert read("memory", "memory.limit_in_bytes") == str(300 * 1024 * 1024)
        assert read("memory", "memory.soft_limit_in_bytes") == str(64 * 1024 * 1024)
    else:
        assert read("memory", "memory.max") == str(300 * 1024 * 1024)
        assert read("memory", "memory.low") == str(64 * 1024 * 1024)
    if layout.hierarchy_of("cpu").version == 1:
        assert read("cpu", "cpu.shares") == "512"
        assert (read("cpu", "cpu.cfs_quota_us"), read("cpu", "cpu.cfs_period_us")) == ("150000", "100000")
    else:
        assert read("cpu", "cpu.max") == "150000 100000"
    assert read("pids", "pids.max") == str(PIDS_LIMIT)


def test_the_pids_limit_refuses_processes_past_it(limited: Cluster) -> None:
    answer = outcome(limited, "spawn_until_refused", str(PIDS_LIMIT * 4))
    seen = answer.get("result", answer)
    assert isinstance(seen, dict)
    assert seen.get("refused") == "EAGAIN", seen
    started = seen["started"]
    assert isinstance(started, int) and 0 < started < PIDS_LIMIT, seen


def test_a_containers_cgroup_is_removed_after_it_exits(limited: Cluster, layout: Layout, worker_id: str) -> None:
    seen = outcome(limited, "own_cgroup")["result"]
    assert isinstance(seen, dict)
    directory = cgroup_dir(layout, seen, "memory")
    assert directory.is_dir()
    stopped = limited.stoker("app", "stop", "cgroup-limits")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert wait_until(lambda: not directory.exists(), 30), f"{directory} is still there"
    limited.deploy("cgroup_limits.py")  # for the tests after this one


def test_a_restarted_worker_removes_the_cgroups_a_previous_run_left(tmp_path: Path, layout: Layout) -> None:
    worker_id = f"cgtest-{uuid.uuid4().hex[:8]}"
    with running_cluster(tmp_path, STOKER_WORKER_ID=worker_id) as cluster:
        memory_parent = parents(layout, worker_id)["memory"]
        # What a worker that died left: a container's cgroup with a process still in it.
        stale = memory_parent / "ct-left-behind"
        stale.mkdir()
        leftover = subprocess.Popen(["sleep", "600"])
        try:
            (stale / "cgroup.procs").write_text(str(leftover.pid))
            old = live_worker_pid(cluster)
            os.kill(old, signal.SIGKILL)
            cluster.output.wait_for(lambda line: "the worker exited with code" in line, timeout=30)  # type: ignore[union-attr]
            assert wait_until(lambda: not stale.exists(), 60), f"{stale} is still there"
            assert leftover.wait(30) == -signal.SIGKILL, "what was left in it was killed"
            assert live_worker_pid(cluster) != old
        finally:
            if alive(leftover.pid):
                leftover.kill()
            leftover.wait()
    # The worker stopped: its parent cgroup went with it.
    assert wait_until(lambda: not memory_parent.exists(), 10), f"{memory_parent} is still there"


def test_a_worker_that_cannot_use_cgroups_says_why_and_runs_without_limits() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to start a worker as another user")
    with tempfile.TemporaryDirectory(prefix="stoker-cgtest-") as directory:  # where nobody may write
        work_dir = Path(directory)
        os.chown(work_dir, 65534, 65534)
        # Without sandboxes, which need root too (tests/test_sandbox.py checks that refusal).
        env = {**base_env(work_dir), "STOKER_IMAGE_DIR": str(work_dir / "images"), "STOKER_INSECURE_NO_SANDBOX": "1"}
        env.pop("STOKER_UV_CACHE_DIR")
        run_as_nobody(work_dir, env)


def run_as_nobody(work_dir: Path, env: dict[str, str]) -> None:
    worker = subprocess.Popen(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            *stoker_command("worker", "--scheduler", "127.0.0.1:9", "--work-dir", str(work_dir)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    output = LineReader(worker.stdout)
    try:
        line = output.wait_for(lambda line: "containers run without cpu, memory or pids limits" in line, 60)
        assert line.endswith("cgroup limits need root, and the worker runs as uid 65534"), line
        output.wait_for(lambda line: "worker " in line and " starting " in line, 60)  # and it goes on
    finally:
        stop_process(worker, signal.SIGTERM)


def test_a_fresh_interpreter_starts_inside_its_cgroup_too(tmp_path: Path, layout: Layout) -> None:
    worker_id = f"cgtest-{uuid.uuid4().hex[:8]}"
    with running_cluster(tmp_path, STOKER_WORKER_ID=worker_id, STOKER_WORKER_FORK="0") as cluster:
        cluster.deploy("cgroup_limits.py")
        seen = outcome(cluster, "own_cgroup")["result"]
        assert isinstance(seen, dict)
        directory = cgroup_dir(layout, seen, "memory")
        assert directory.parent == parents(layout, worker_id)["memory"]
        assert str(host_pid(seen["pid"])) in (directory / "cgroup.procs").read_text().split()
        over = outcome(cluster, "hog", "400")
        assert "ran out of memory at 256 MiB" in str(over.get("error")), over


def test_the_v2_mechanics_on_a_real_cgroup2_without_controllers(layout: Layout) -> None:
    """Where v1 holds the controllers, the cgroup2 beside it has none, but its cgroups still take
    processes, kill them all (cgroup.kill) and go: the v2 half of ContainerCgroup, for real."""
    _, unified = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    if unified is None or any(h.version == 2 for h in layout.hierarchies):
        pytest.skip("no empty cgroup2 beside v1 controllers here (a v2 machine runs the tests above on v2)")
    hierarchy = Hierarchy(unified, 2, frozenset())
    worker = cgroups.WorkerCgroups(Layout((hierarchy,)), f"cgtest-{uuid.uuid4().hex[:8]}", pids_max=0)
    worker.prepare()
    cgroup = worker.container("ct-v2", cgroups.Limits(memory_limit_mib=64))
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        cgroup.attach(sleeper.pid)
        assert f"0::/stoker/{worker.parent}/ct-v2" in Path(f"/proc/{sleeper.pid}/cgroup").read_text().splitlines()
        assert cgroup.pids() == {sleeper.pid}
        assert cgroup.oom_kills() is None, "no memory controller here: no counter, and no guess"
        cgroup.remove()
        assert sleeper.wait(10) == -signal.SIGKILL
        assert not (unified / "stoker" / worker.parent / "ct-v2").exists()
    finally:
        if alive(sleeper.pid):
            sleeper.kill()
        sleeper.wait()
        worker.remove()
    assert not (unified / "stoker" / worker.parent).exists()
