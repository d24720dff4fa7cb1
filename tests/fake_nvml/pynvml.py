"""A stand-in for `pynvml` (nvidia-ml-py) for machines without an NVIDIA driver.

Put this folder first on PYTHONPATH and `import pynvml` finds it. The devices come from
STOKER_FAKE_NVML, a JSON list such as `[{"name": "NVIDIA H100 80GB HBM3", "memory_gib": 80,
"utilization": 7}]`; a `"utilization": null` device answers Not Supported, as MIG devices do.
Without the variable, nvmlInit fails the way the real module does on a machine with no driver.

Only the calls worker/gpus.py makes are here, with the real signatures (names and UUIDs are str,
as in nvidia-ml-py >= 11.515). A call it lacks raises AttributeError, so a new NVML call in the
worker shows up in the tests instead of passing silently.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

ENV = "STOKER_FAKE_NVML"
GIB = 1024**3

NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_UNKNOWN = 999

_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    """Like the real one: `value` is the NVML return code and str() its message."""

    value = NVML_ERROR_UNKNOWN

    def __init__(self, value: int | None = None) -> None:
        if value is not None:
            self.value = value
        super().__init__(self.value)

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"NVML Error with code {self.value}")


class NVMLError_Uninitialized(NVMLError):
    value = NVML_ERROR_UNINITIALIZED


class NVMLError_InvalidArgument(NVMLError):
    value = NVML_ERROR_INVALID_ARGUMENT


class NVMLError_NotSupported(NVMLError):
    value = NVML_ERROR_NOT_SUPPORTED


class NVMLError_LibraryNotFound(NVMLError):
    value = NVML_ERROR_LIBRARY_NOT_FOUND


@dataclass(frozen=True)
class _Device:
    index: int
    name: str
    uuid: str
    memory_bytes: int
    utilization: int | None


@dataclass(frozen=True)
class _Memory:
    """The fields of c_nvmlMemory_t."""

    total: int
    free: int
    used: int


@dataclass(frozen=True)
class _Utilization:
    """The fields of c_nvmlUtilization_t, in percent."""

    gpu: int
    memory: int


_devices: list[_Device] = []
_refcount = 0  # the real library counts nvmlInit calls and shuts down at the matching last one


def _load(text: str) -> list[_Device]:
    entries: Any = json.loads(text)
    if not isinstance(entries, list):
        raise ValueError(f"{ENV} must be a JSON list of devices, got {text!r}")
    devices = []
    for index, entry in enumerate(entries):
        name = str(entry["name"])
        devices.append(
            _Device(
                index=index,
                name=name,
                # Stable across runs, in the real "GPU-<uuid>" form.
                uuid=f"GPU-{uuid.uuid5(uuid.NAMESPACE_OID, f'fake-nvml:{index}:{name}')}",
                memory_bytes=int(float(entry["memory_gib"]) * GIB),
                utilization=None if entry.get("utilization", 0) is None else int(entry.get("utilization", 0)),
            )
        )
    return devices


def _device(handle: object) -> _Device:
    if _refcount == 0:
        raise NVMLError_Uninitialized()
    if not isinstance(handle, _Device) or handle not in _devices:
        raise NVMLError_InvalidArgument()
    return handle


def nvmlInit() -> None:
    global _devices, _refcount
    text = os.environ.get(ENV)
    if text is None:
        raise NVMLError_LibraryNotFound()
    if _refcount == 0:
        _devices = _load(text)
    _refcount += 1


def nvmlShutdown() -> None:
    global _refcount
    if _refcount == 0:
        raise NVMLError_Uninitialized()
    _refcount -= 1


def nvmlDeviceGetCount() -> int:
    if _refcount == 0:
        raise NVMLError_Uninitialized()
    return len(_devices)


def nvmlDeviceGetHandleByIndex(index: int) -> object:
    if _refcount == 0:
        raise NVMLError_Uninitialized()
    if not 0 <= index < len(_devices):
        raise NVMLError_InvalidArgument()
    return _devices[index]


def nvmlDeviceGetName(handle: object) -> str:
    return _device(handle).name


def nvmlDeviceGetUUID(handle: object) -> str:
    return _device(handle).uuid


def nvmlDeviceGetMemoryInfo(handle: object, version: int | None = None) -> _Memory:
    total = _device(handle).memory_bytes
    return _Memory(total=total, free=total, used=0)


def nvmlDeviceGetUtilizationRates(handle: object) -> _Utilization:
    utilization = _device(handle).utilization
    if utilization is None:
        raise NVMLError_NotSupported()
    return _Utilization(gpu=utilization, memory=0)
