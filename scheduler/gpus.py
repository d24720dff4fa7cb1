"""GPU requests in Modal's `gpu=` syntax, and which of a worker's devices can serve them.

Pure functions: the scheduler passes in a worker's inventory and the indices its containers hold.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from protos import stoker_pb2 as pb

GIB = 1024**3
MAX_COUNT = 8  # the most GPUs one machine has, so more could never be placed
MEMORY_TOLERANCE = 0.15  # "80GB" cards report 79.6 GiB (H100) or 80 GiB (A100) through NVML

TIMES = "×"  # noqa: RUF001 (the multiplication sign, not the letter x, in messages people read)

_FORM = "expected TYPE[:COUNT] alternatives separated by commas, as in 'H100', 'any:2' or 'H100,A100-80GB:2'"
_TYPE = re.compile(r"[A-Za-z0-9-]+")
_COUNT = re.compile(r"[0-9]+")
_MEMORY_SUFFIX = re.compile(r"(?P<model>.+)-(?P<gib>[0-9]+)GB")
_SEPARATORS = re.compile(r"[^A-Z0-9]+")


@dataclass(frozen=True)
class GpuOption:
    """One alternative of a request: `count` devices of `type` (uppercase; "" means any GPU)."""

    type: str
    count: int


def parse_gpu(spec: str) -> tuple[GpuOption, ...]:
    """`"H100,A100-80GB:2"` -> the alternatives in preference order; `""` -> no GPU."""
    if not spec.strip():
        return ()
    return tuple(_parse_option(spec, part.strip()) for part in spec.split(","))


def _parse_option(spec: str, part: str) -> GpuOption:
    def invalid(problem: str) -> ValueError:
        return ValueError(f"gpu={spec!r}: {problem}; {_FORM}, COUNT from 1 to {MAX_COUNT}")

    if not part:
        raise invalid("empty alternative (two commas in a row, or one at an end)")
    name, colon, count_text = part.partition(":")
    name = name.strip()
    count_text = count_text.strip()
    if not name:
        raise invalid(f"{part!r} has no GPU type before the ':'")
    if not _TYPE.fullmatch(name):
        raise invalid(f"GPU type {name!r} may only contain letters, digits and '-'")
    count = 1
    if colon:
        if not _COUNT.fullmatch(count_text) or int(count_text) == 0:
            raise invalid(f"count {count_text!r} in {part!r} is not a positive integer")
        count = int(count_text)
        if count > MAX_COUNT:
            raise invalid(f"count {count} in {part!r} is above {MAX_COUNT}")
    gpu_type = name.upper()
    return GpuOption(type="" if gpu_type == "ANY" else gpu_type, count=count)


def matches(gpu_type: str, gpu: pb.Gpu) -> bool:
    """Whether the device satisfies `gpu_type` ("A100-80GB", "H100", "" for any)."""
    if not gpu_type:
        return True
    model, gib = gpu_type.upper(), 0
    suffix = _MEMORY_SUFFIX.fullmatch(model)
    if suffix:
        model, gib = suffix["model"], int(suffix["gib"])
    # Whole tokens, so that "A10" is not "A100"/"A10G", "H100" is not "H200" and "L4" is not "L40S";
    # a contiguous run of them, so that a type like "RTX-4090" matches "NVIDIA GeForce RTX 4090".
    wanted = _tokens(model)
    have = _tokens(gpu.name)
    if not wanted or not any(have[i : i + len(wanted)] == wanted for i in range(len(have))):
        return False
    if not gib:
        return True
    # Declared devices may carry the size only in their name ("A100-80GB" with no memory given).
    near = abs(gpu.memory_bytes - gib * GIB) <= MEMORY_TOLERANCE * gib * GIB
    return near or f"{gib}GB" in have


def _tokens(name: str) -> list[str]:
    return [token for token in _SEPARATORS.split(name.upper()) if token]


def choose_devices(
    options: Sequence[GpuOption], gpus: Sequence[pb.Gpu], in_use: Collection[int]
) -> tuple[int, ...] | None:
    """The device indices for a new container: the first option that fits now, lowest indices first."""
    if not options:
        return ()
    ordered = sorted(gpus, key=lambda gpu: gpu.index)
    for option in options:
        free = [gpu.index for gpu in ordered if gpu.index not in in_use and matches(option.type, gpu)]
        if len(free) >= option.count:
            return tuple(free[: option.count])
    return None


def ever_fits(options: Sequence[GpuOption], gpus: Sequence[pb.Gpu]) -> bool:
    """Whether this worker could run it with all its GPUs free."""
    return choose_devices(options, gpus, ()) is not None


def describe(options: Sequence[GpuOption]) -> str:
    """`"2 × H100 or 2 × A100-80GB"`, for messages about requests that cannot be placed."""  # noqa: RUF002
    if not options:
        return "no GPU"
    return " or ".join(f"{option.count} {TIMES} {option.type or 'any GPU'}" for option in options)


def describe_inventory(gpus: Sequence[pb.Gpu]) -> str:
    """`"1 × A10G, 2 × H100"`, grouped by device name in index order."""  # noqa: RUF002
    if not gpus:
        return "no GPUs"
    counts = Counter(gpu.name or "unnamed GPU" for gpu in sorted(gpus, key=lambda gpu: gpu.index))
    return ", ".join(f"{count} {TIMES} {name}" for name, count in counts.items())


def unmet(options: Sequence[GpuOption], inventories: Mapping[str, Sequence[pb.Gpu]]) -> bool:
    """Whether the request asks for GPUs and no worker (by id, its GPUs) could ever give them."""
    return bool(options) and bool(inventories) and not any(ever_fits(options, g) for g in inventories.values())


def unmet_message(
    function: str, spec: str, options: Sequence[GpuOption], inventories: Mapping[str, Sequence[pb.Gpu]]
) -> str:
    """Why a function's containers cannot start anywhere, naming each worker's GPUs, and the fix."""
    have = "; ".join(f"{worker}: {describe_inventory(g)}" for worker, g in inventories.items())
    return (
        f"{function!r} needs {describe(options)} (gpu={spec!r}) and no worker has that "
        f"many such GPUs ({have}); add a worker that has them or change gpu="
    )
