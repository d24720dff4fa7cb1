"""A container's limits, and the cgroup files that say them in v1 and in v2.

Modal's names: `cpu=` and `memory=` are requests (a share of the machine under contention, memory
the kernel reclaims from last), a `(request, limit)` pair also sets a hard limit (a CPU quota,
memory past which the kernel's OOM killer kills the container). Swap is off for a memory limit,
so that the limit is the container's memory and not its memory plus the machine's swap.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
CFS_PERIOD_US = 100_000  # the kernel's default period; the quota is cores * period
V1_SHARES_PER_CORE = 1024  # v1's cpu.shares of a process that asked for nothing


@dataclass(frozen=True)
class Limits:
    cpu_request: float = 0.0  # cores; 0: none asked (the kernel's default share)
    cpu_limit: float = 0.0  # cores; 0: no quota
    memory_request_mib: int = 0  # 0: none
    memory_limit_mib: int = 0  # 0: no hard limit
    pids_max: int = 0  # 0: no limit


# (controller, file, value), in the order to write them: v1's memsw limit may never be below its
# memory limit, so the memory limit goes first (both start unlimited).
Setting = tuple[str, str, str]


def v1_settings(limits: Limits, has_memsw: bool) -> list[Setting]:
    settings: list[Setting] = []
    if limits.cpu_request > 0:
        settings.append(("cpu", "cpu.shares", str(cpu_shares(limits.cpu_request))))
    if limits.cpu_limit > 0:
        settings.append(("cpu", "cpu.cfs_period_us", str(CFS_PERIOD_US)))
        settings.append(("cpu", "cpu.cfs_quota_us", str(cpu_quota_us(limits.cpu_limit))))
    if limits.memory_request_mib > 0:
        settings.append(("memory", "memory.soft_limit_in_bytes", str(limits.memory_request_mib * MIB)))
    if limits.memory_limit_mib > 0:
        settings.append(("memory", "memory.limit_in_bytes", str(limits.memory_limit_mib * MIB)))
        if has_memsw:  # memory plus swap = memory: no swap
            settings.append(("memory", "memory.memsw.limit_in_bytes", str(limits.memory_limit_mib * MIB)))
        else:  # swap accounting is off in this kernel: ask it not to swap the container instead
            settings.append(("memory", "memory.swappiness", "0"))
    if limits.pids_max > 0:
        settings.append(("pids", "pids.max", str(limits.pids_max)))
    return settings


def v2_settings(limits: Limits, has_swap: bool) -> list[Setting]:
    settings: list[Setting] = []
    if limits.cpu_request > 0:
        settings.append(("cpu", "cpu.weight", str(cpu_weight(limits.cpu_request))))
    if limits.cpu_limit > 0:
        settings.append(("cpu", "cpu.max", f"{cpu_quota_us(limits.cpu_limit)} {CFS_PERIOD_US}"))
    if limits.memory_request_mib > 0:
        settings.append(("memory", "memory.low", str(limits.memory_request_mib * MIB)))
    if limits.memory_limit_mib > 0:
        settings.append(("memory", "memory.max", str(limits.memory_limit_mib * MIB)))
        if has_swap:
            settings.append(("memory", "memory.swap.max", "0"))
        # Out of memory, the whole container goes, as on v1 its main process's death takes it.
        settings.append(("memory", "memory.oom.group", "1"))
    if limits.pids_max > 0:
        settings.append(("pids", "pids.max", str(limits.pids_max)))
    return settings


def cpu_shares(cores: float) -> int:
    return max(2, min(262_144, round(cores * V1_SHARES_PER_CORE)))  # v1's bounds


def cpu_weight(cores: float) -> int:
    """v2's weight for the share v1 would give (the conversion Kubernetes and runc use)."""
    return 1 + ((cpu_shares(cores) - 2) * 9999) // 262_142


def cpu_quota_us(cores: float) -> int:
    return max(1000, round(cores * CFS_PERIOD_US))  # the kernel refuses a quota under 1 ms
