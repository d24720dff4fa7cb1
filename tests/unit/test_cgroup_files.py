"""worker/cgroups as files: where the controllers are (v1, v2, the hybrid), the files a
container's limits become in each version, and one container's cgroup against a directory tree
laid out as cgroup2 is (this machine's controllers are v1's, so a real cgroup2 cannot have them:
tests/test_cgroups.py runs the real v1 ones)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from worker.cgroups import CgroupsUnusable, ContainerCgroup, Limits, WorkerCgroups, parent_name
from worker.cgroups.layout import Hierarchy, Layout, choose, detect, parse_mountinfo
from worker.cgroups.limits import cpu_weight, v1_settings, v2_settings

MIB = 1024 * 1024

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
UNIFIED = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
COMOUNTED = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"


def test_the_hybrid_layout_uses_the_v1_controllers_beside_an_empty_cgroup2() -> None:
    v1, v2 = parse_mountinfo(HYBRID)
    assert v2 == Path("/sys/fs/cgroup/unified")
    layout = choose(v1, v2, frozenset())
    assert {h.mount: (h.version, set(h.controllers)) for h in layout.hierarchies} == {
        Path("/sys/fs/cgroup/cpu"): (1, {"cpu"}),
        Path("/sys/fs/cgroup/memory"): (1, {"memory"}),
        Path("/sys/fs/cgroup/pids"): (1, {"pids"}),
    }


def test_the_unified_layout_uses_the_cgroup2_controllers() -> None:
    v1, v2 = parse_mountinfo(UNIFIED)
    layout = choose(v1, v2, frozenset({"cpuset", "cpu", "io", "memory", "pids"}))
    assert layout.hierarchies == (Hierarchy(Path("/sys/fs/cgroup"), 2, frozenset({"cpu", "memory", "pids"})),)


def test_a_controller_v1_lacks_comes_from_the_cgroup2() -> None:
    v1, v2 = parse_mountinfo(COMOUNTED + UNIFIED)
    layout = choose(v1, v2, frozenset({"memory", "pids"}))
    assert layout.hierarchy_of("cpu") == Hierarchy(Path("/sys/fs/cgroup/cpu,cpuacct"), 1, frozenset({"cpu"}))
    assert layout.hierarchy_of("memory").version == 2 == layout.hierarchy_of("pids").version


def test_a_controller_that_is_nowhere_is_one_line_saying_which() -> None:
    with pytest.raises(CgroupsUnusable, match=r"^the cgroup controller\(s\) memory, pids are on no cgroup v1 "):
        detect(COMOUNTED + "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n", read_v2_controllers=False)
    with pytest.raises(CgroupsUnusable, match="no cgroup2 is mounted"):
        detect("", read_v2_controllers=False)


def test_requests_and_limits_become_v1_files() -> None:
    limits = Limits(cpu_request=0.5, cpu_limit=1.5, memory_request_mib=128, memory_limit_mib=256, pids_max=100)
    assert v1_settings(limits, has_memsw=True) == [
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "150000"),
        ("memory", "memory.soft_limit_in_bytes", str(128 * MIB)),
        ("memory", "memory.limit_in_bytes", str(256 * MIB)),
        ("memory", "memory.memsw.limit_in_bytes", str(256 * MIB)),  # after the memory limit: never below it
        ("pids", "pids.max", "100"),
    ]
    no_swap_accounting = v1_settings(Limits(memory_limit_mib=256), has_memsw=False)
    assert no_swap_accounting[-1] == ("memory", "memory.swappiness", "0")
    assert v1_settings(Limits(), has_memsw=True) == [], "nothing asked: the kernel's defaults"


def test_requests_and_limits_become_v2_files() -> None:
    limits = Limits(cpu_request=1.0, cpu_limit=2.0, memory_request_mib=128, memory_limit_mib=256, pids_max=100)
    assert v2_settings(limits, has_swap=True) == [
        ("cpu", "cpu.weight", "39"),
        ("cpu", "cpu.max", "200000 100000"),
        ("memory", "memory.low", str(128 * MIB)),
        ("memory", "memory.max", str(256 * MIB)),
        ("memory", "memory.swap.max", "0"),
        ("memory", "memory.oom.group", "1"),
        ("pids", "pids.max", "100"),
    ]
    assert cpu_weight(0.001) == 1 and cpu_weight(1000) == 10000, "within v2's bounds"


def fake_cgroup2(root: Path) -> Layout:
    """A directory laid out as a cgroup2 root, with the controllers it offers."""
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    return Layout((Hierarchy(root, 2, frozenset({"cpu", "memory", "pids"})),))


def test_a_v2_container_cgroup_enables_its_controllers_and_writes_its_limits(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    layout = fake_cgroup2(root)
    worker = WorkerCgroups(layout, parent_name("w1", tmp_path / "work"), pids_max=64)
    assert worker.prepare() == 0
    parent = root / "stoker" / worker.parent
    for directory in (root, root / "stoker", parent):
        assert (directory / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    cgroup = worker.container("ct-1", Limits(cpu_request=1, cpu_limit=2.5, memory_limit_mib=256))
    leaf = parent / "ct-1"
    assert (leaf / "cpu.weight").read_text() == "39"
    assert (leaf / "cpu.max").read_text() == "250000 100000"
    assert (leaf / "memory.max").read_text() == str(256 * MIB)
    assert (leaf / "memory.oom.group").read_text() == "1"
    assert (leaf / "pids.max").read_text() == "64", "the worker's pids limit"
    assert not (leaf / "memory.low").exists(), "no request: no protection"
    cgroup.attach(4242)
    assert (leaf / "cgroup.procs").read_text() == "4242"
    assert cgroup.procs_files == [leaf / "cgroup.procs"]


def test_v2_memory_events_tell_an_oom_kill_from_other_deaths(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    layout = fake_cgroup2(root)
    leaf = root / "ct-1"
    cgroup = ContainerCgroup("ct-1", {layout.hierarchies[0]: leaf}, Limits(memory_limit_mib=256))
    cgroup.create()
    events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill {}\noom_group_kill 0\n"
    (leaf / "memory.events").write_text(events.format(0))
    assert cgroup.exit_reason(-signal.SIGKILL) == "exited with code -9", "killed, but not for memory"
    (leaf / "memory.events").write_text(events.format(1))
    assert cgroup.exit_reason(-signal.SIGKILL) == "ran out of memory at 256 MiB"
    assert cgroup.exit_reason(3) == "exited with code 3", "it went on, and exited on its own"
    assert cgroup.exit_reason(0) == ""
    unlimited = ContainerCgroup("ct-1", cgroup.directories, Limits())
    assert unlimited.exit_reason(-signal.SIGKILL) == "ran out of memory (the machine's: it has no limit of its own)"


def test_v1_without_an_oom_kill_counter_reads_the_limit_hits(tmp_path: Path) -> None:
    mount = tmp_path / "memory"
    mount.mkdir()
    hierarchy = Hierarchy(mount, 1, frozenset({"memory"}))
    leaf = mount / "ct-1"
    cgroup = ContainerCgroup("ct-1", {hierarchy: leaf}, Limits(memory_limit_mib=128))
    cgroup.create()
    (leaf / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\n")  # before kernel 4.13
    (leaf / "memory.failcnt").write_text("0\n")
    assert not cgroup.out_of_memory(-signal.SIGKILL)
    (leaf / "memory.failcnt").write_text("7\n")
    assert cgroup.exit_reason(-signal.SIGKILL) == "ran out of memory at 128 MiB"


def test_parents_are_one_per_worker_installation() -> None:
    assert parent_name("host/a b", Path("/w1")).startswith("host_a_b-")
    assert parent_name("host", Path("/w1")) != parent_name("host", Path("/w2"))
    assert parent_name("host", Path("/w1")) == parent_name("host", Path("/w1"))
