"""The worker's GPU inventory: read through NVML, or declared for tests and simulation."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from protos import stoker_pb2 as pb

log = logging.getLogger(__name__)
GIB = 1024**3


def parse_declared(spec: str) -> list[pb.Gpu]:
    """`"A10G:24,H100:80"` -> one GPU per entry, name and memory in GiB."""
    gpus = []
    for index, item in enumerate(part.strip() for part in spec.split(",") if part.strip()):
        name, _, memory = item.partition(":")
        try:
            gib = float(memory) if memory else 0.0
        except ValueError:
            raise ValueError(f"GPU {item!r}: memory must be a number of GiB, as in 'A10G:24'") from None
        gpus.append(
            pb.Gpu(
                index=index,
                uuid=f"GPU-declared-{uuid.uuid5(uuid.NAMESPACE_OID, f'{index}:{name}')}",
                name=name,
                memory_bytes=int(gib * GIB),
            )
        )
    return gpus


def read_nvml(nvml: Any = None) -> list[pb.Gpu]:
    """The machine's GPUs through NVML; none (logged once, by the caller) without a driver."""
    if nvml is None:
        import pynvml

        nvml = pynvml
    nvml.nvmlInit()
    try:
        gpus = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = nvml.nvmlDeviceGetName(handle)
            gpu_uuid = nvml.nvmlDeviceGetUUID(handle)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                utilization = nvml.nvmlDeviceGetUtilizationRates(handle).gpu
            except nvml.NVMLError:
                utilization = 0
            gpus.append(
                pb.Gpu(
                    index=index,
                    uuid=gpu_uuid.decode() if isinstance(gpu_uuid, bytes) else gpu_uuid,
                    name=name.decode() if isinstance(name, bytes) else name,
                    memory_bytes=int(memory.total),
                    utilization=int(utilization),
                )
            )
        return gpus
    finally:
        nvml.nvmlShutdown()


def inventory(declared: str) -> list[pb.Gpu]:
    if declared:
        return parse_declared(declared)
    try:
        return read_nvml()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        log.info("no NVIDIA GPUs on this worker (NVML: %s)", exc)
        return []
