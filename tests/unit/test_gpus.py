"""GPU requests in Modal's syntax and which devices serve them (scheduler/gpus.py)."""

from __future__ import annotations

import pytest

from protos import stoker_pb2 as pb
from scheduler.gpus import (
    TIMES,
    GpuOption,
    choose_devices,
    describe,
    describe_inventory,
    ever_fits,
    matches,
    parse_gpu,
    unmet,
    unmet_message,
)

GIB = 1024**3

# As NVML reports them on real machines, with the memory NVML gives for each (MiB).
NVML_H100 = pb.Gpu(name="NVIDIA H100 80GB HBM3", memory_bytes=81559 * 1024**2)
NVML_A100_80 = pb.Gpu(name="NVIDIA A100-SXM4-80GB", memory_bytes=81920 * 1024**2)
NVML_A100_40 = pb.Gpu(name="NVIDIA A100-PCIE-40GB", memory_bytes=40960 * 1024**2)
NVML_T4 = pb.Gpu(name="Tesla T4", memory_bytes=15360 * 1024**2)
NVML_A10G = pb.Gpu(name="NVIDIA A10G", memory_bytes=23028 * 1024**2)
NVML_L4 = pb.Gpu(name="NVIDIA L4", memory_bytes=23034 * 1024**2)
NVML_L40S = pb.Gpu(name="NVIDIA L40S", memory_bytes=46068 * 1024**2)
NVML_H200 = pb.Gpu(name="NVIDIA H200", memory_bytes=143771 * 1024**2)
NVML_RTX_4090 = pb.Gpu(name="NVIDIA GeForce RTX 4090", memory_bytes=24564 * 1024**2)
NVML_ALL = [
    NVML_H100,
    NVML_A100_80,
    NVML_A100_40,
    NVML_T4,
    NVML_A10G,
    NVML_L4,
    NVML_L40S,
    NVML_H200,
    NVML_RTX_4090,
]


def gpu(index: int, name: str, gib: float = 0) -> pb.Gpu:
    return pb.Gpu(index=index, uuid=f"GPU-{index}", name=name, memory_bytes=int(gib * GIB))


# --- parse_gpu ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", ()),
        ("   ", ()),
        ("any", (GpuOption("", 1),)),
        ("ANY", (GpuOption("", 1),)),
        ("any:2", (GpuOption("", 2),)),
        ("T4", (GpuOption("T4", 1),)),
        ("t4", (GpuOption("T4", 1),)),
        ("A100-80GB", (GpuOption("A100-80GB", 1),)),
        ("a100-40gb", (GpuOption("A100-40GB", 1),)),
        ("H100:2", (GpuOption("H100", 2),)),
        ("H100:8", (GpuOption("H100", 8),)),
        ("H100,A100-80GB:2", (GpuOption("H100", 1), GpuOption("A100-80GB", 2))),
        (" h100 , a100-80gb : 2 ", (GpuOption("H100", 1), GpuOption("A100-80GB", 2))),
        ("L4,any", (GpuOption("L4", 1), GpuOption("", 1))),
    ],
)
def test_parse_gpu(spec: str, expected: tuple[GpuOption, ...]) -> None:
    assert parse_gpu(spec) == expected


def test_parse_gpu_keeps_the_preference_order() -> None:
    assert [option.type for option in parse_gpu("A10G,L4,T4,any")] == ["A10G", "L4", "T4", ""]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("H100:0", "count '0' in 'H100:0' is not a positive integer"),
        ("H100:-1", "count '-1' in 'H100:-1' is not a positive integer"),
        ("H100:two", "count 'two' in 'H100:two' is not a positive integer"),
        ("H100:1.5", "count '1.5' in 'H100:1.5' is not a positive integer"),
        ("H100:", "count '' in 'H100:' is not a positive integer"),
        ("H100:2:2", "count '2:2' in 'H100:2:2' is not a positive integer"),
        ("H100:9", "count 9 in 'H100:9' is above 8"),
        ("any:16", "count 16 in 'any:16' is above 8"),
        ("H100,,T4", "empty alternative"),
        ("H100,", "empty alternative"),
        (",H100", "empty alternative"),
        (":2", "':2' has no GPU type before the ':'"),
        ("H100!", "GPU type 'H100!' may only contain letters, digits and '-'"),
        ("A100_80GB", "GPU type 'A100_80GB' may only contain letters, digits and '-'"),
        ("RTX 4090", "GPU type 'RTX 4090' may only contain letters, digits and '-'"),
        ("H100;T4", "GPU type 'H100;T4' may only contain letters, digits and '-'"),
    ],
)
def test_parse_gpu_rejects_bad_specs_naming_the_part_and_the_form(spec: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_gpu(spec)
    message = str(info.value)
    assert message.startswith(f"gpu={spec!r}: ")
    assert problem in message
    assert "TYPE[:COUNT]" in message
    assert "'H100,A100-80GB:2'" in message
    assert "COUNT from 1 to 8" in message


# --- matches -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gpu_type", "device", "expected"),
    [
        # "" is any GPU.
        ("", NVML_T4, True),
        ("", gpu(0, "", 0), True),
        # NVML names.
        ("H100", NVML_H100, True),
        ("H100", NVML_H200, False),
        ("H200", NVML_H200, True),
        ("H200", NVML_H100, False),
        ("A100", NVML_A100_80, True),
        ("A100", NVML_A100_40, True),
        ("A100-80GB", NVML_A100_80, True),
        ("A100-80GB", NVML_A100_40, False),
        ("A100-40GB", NVML_A100_40, True),
        ("A100-40GB", NVML_A100_80, False),
        ("T4", NVML_T4, True),
        ("A10G", NVML_A10G, True),
        ("A10", NVML_A10G, False),
        ("A10", NVML_A100_80, False),
        ("A100", NVML_A10G, False),
        ("L4", NVML_L4, True),
        ("L4", NVML_L40S, False),
        ("L40S", NVML_L40S, True),
        ("L40S", NVML_L4, False),
        ("L40", NVML_L40S, False),
        ("RTX-4090", NVML_RTX_4090, True),
        ("4090", NVML_RTX_4090, True),
        ("H100-80GB", NVML_H100, True),
        ("H100-94GB", NVML_H100, False),
        # Declared names.
        ("A10G", gpu(0, "A10G", 24), True),
        ("A10", gpu(0, "A10G", 24), False),
        ("H100", gpu(0, "H100", 80), True),
        ("H100", gpu(0, "H200", 141), False),
        ("A100", gpu(0, "A100-80GB"), True),
        ("A100-80GB", gpu(0, "A100-80GB"), True),
        ("A100-40GB", gpu(0, "A100-80GB"), False),
        ("A100-80GB", gpu(0, "A100", 80), True),
        ("A100-40GB", gpu(0, "A100", 40), True),
        ("A100-80GB", gpu(0, "A100"), False),
        ("L4", gpu(0, "L40S", 48), False),
        ("T4", gpu(0, "t4", 16), True),
    ],
)
def test_matches(gpu_type: str, device: pb.Gpu, expected: bool) -> None:
    assert matches(gpu_type, device) is expected


def test_matches_is_case_insensitive_in_the_type() -> None:
    assert matches("a100-80gb", NVML_A100_80)
    assert matches("h100", NVML_H100)


@pytest.mark.parametrize(
    ("gib", "expected"),
    [(80, True), (80 * 0.86, True), (80 * 1.14, True), (80 * 0.84, False), (80 * 1.16, False), (0, False)],
)
def test_memory_suffix_allows_fifteen_percent_either_way(gib: float, expected: bool) -> None:
    assert matches("A100-80GB", gpu(0, "A100", gib)) is expected


def test_memory_suffix_in_the_name_is_enough_when_memory_says_otherwise() -> None:
    # The rule is memory OR name: a declared "A100-80GB" given a wrong size still names its variant.
    assert matches("A100-80GB", gpu(0, "A100-80GB", 40))


@pytest.mark.parametrize("gpu_type", ["H100", "A100", "A100-80GB", "T4", "L4", "L40S", "H200", "A10G"])
def test_each_type_matches_exactly_the_expected_nvml_devices(gpu_type: str) -> None:
    expected = {
        "H100": [NVML_H100],
        "A100": [NVML_A100_80, NVML_A100_40],
        "A100-80GB": [NVML_A100_80],
        "T4": [NVML_T4],
        "L4": [NVML_L4],
        "L40S": [NVML_L40S],
        "H200": [NVML_H200],
        "A10G": [NVML_A10G],
    }[gpu_type]
    assert [device for device in NVML_ALL if matches(gpu_type, device)] == expected


# --- choose_devices and ever_fits --------------------------------------------------------------


def test_no_gpu_needed_gets_no_devices() -> None:
    assert choose_devices((), [gpu(0, "H100", 80)], in_use=()) == ()
    assert choose_devices((), [], in_use=()) == ()
    assert ever_fits((), [])


def test_choose_devices_takes_the_lowest_free_matching_indices() -> None:
    gpus = [gpu(3, "H100", 80), gpu(0, "H100", 80), gpu(2, "H100", 80), gpu(1, "A10G", 24)]
    assert choose_devices(parse_gpu("H100:2"), gpus, in_use=()) == (0, 2)


def test_choose_devices_skips_devices_in_use() -> None:
    gpus = [gpu(0, "H100", 80), gpu(1, "H100", 80), gpu(2, "H100", 80)]
    assert choose_devices(parse_gpu("H100"), gpus, in_use={0}) == (1,)
    assert choose_devices(parse_gpu("H100:2"), gpus, in_use=[1]) == (0, 2)
    assert choose_devices(parse_gpu("H100:2"), gpus, in_use=(0, 2)) is None


def test_choose_devices_prefers_earlier_options() -> None:
    gpus = [gpu(0, "A100-80GB", 80), gpu(1, "A100-80GB", 80), gpu(2, "H100", 80)]
    assert choose_devices(parse_gpu("H100,A100-80GB:2"), gpus, in_use=()) == (2,)
    assert choose_devices(parse_gpu("A100-80GB:2,H100"), gpus, in_use=()) == (0, 1)


def test_choose_devices_falls_back_to_a_later_option_when_the_first_is_busy() -> None:
    gpus = [gpu(0, "A100-80GB", 80), gpu(1, "A100-80GB", 80), gpu(2, "H100", 80)]
    assert choose_devices(parse_gpu("H100,A100-80GB:2"), gpus, in_use={2}) == (0, 1)
    assert choose_devices(parse_gpu("H100,A100-80GB:2"), gpus, in_use={2, 1}) is None


def test_choose_devices_needs_count_devices_of_one_option_not_a_mix() -> None:
    gpus = [gpu(0, "H100", 80), gpu(1, "A100-80GB", 80)]
    assert choose_devices(parse_gpu("H100:2,A100-80GB:2"), gpus, in_use=()) is None


def test_choose_devices_any_takes_whatever_is_free() -> None:
    gpus = [gpu(0, "T4", 16), gpu(1, "A10G", 24), gpu(2, "H100", 80)]
    assert choose_devices(parse_gpu("any:2"), gpus, in_use={0}) == (1, 2)
    assert choose_devices(parse_gpu("any"), [], in_use=()) is None


def test_choose_devices_with_nvml_names() -> None:
    gpus = [pb.Gpu(index=i, name=device.name, memory_bytes=device.memory_bytes) for i, device in enumerate(NVML_ALL)]
    assert choose_devices(parse_gpu("A100-40GB"), gpus, in_use=()) == (2,)
    assert choose_devices(parse_gpu("A100:2"), gpus, in_use=()) == (1, 2)
    assert choose_devices(parse_gpu("L4"), gpus, in_use={5}) is None
    assert choose_devices(parse_gpu("B200,H200"), gpus, in_use=()) == (7,)


def test_ever_fits_ignores_what_is_in_use_now() -> None:
    gpus = [gpu(0, "H100", 80), gpu(1, "H100", 80)]
    assert ever_fits(parse_gpu("H100:2"), gpus)
    assert choose_devices(parse_gpu("H100:2"), gpus, in_use={0}) is None
    assert not ever_fits(parse_gpu("H100:3"), gpus)
    assert not ever_fits(parse_gpu("A100"), gpus)
    assert ever_fits(parse_gpu("A100,H100"), gpus)
    assert not ever_fits(parse_gpu("any"), [])


# --- describe ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        ("H100", "1 × H100"),  # noqa: RUF001
        ("h100:2,a100-80gb:2", "2 × H100 or 2 × A100-80GB"),  # noqa: RUF001
        ("any", "1 × any GPU"),  # noqa: RUF001
        ("any:4", "4 × any GPU"),  # noqa: RUF001
        ("", "no GPU"),
    ],
)
def test_describe(spec: str, text: str) -> None:
    assert describe(parse_gpu(spec)) == text


def test_describe_inventory_groups_by_name_in_index_order() -> None:
    gpus = [gpu(2, "H100", 80), gpu(0, "A10G", 24), gpu(1, "H100", 80)]
    assert describe_inventory(gpus) == "1 × A10G, 2 × H100"  # noqa: RUF001


def test_describe_inventory_with_nvml_names() -> None:
    assert describe_inventory([NVML_H100, NVML_H100]) == "2 × NVIDIA H100 80GB HBM3"  # noqa: RUF001


def test_describe_inventory_empty() -> None:
    assert describe_inventory([]) == "no GPUs"


def test_unmet_only_when_workers_are_there_and_none_could_ever_fit() -> None:
    inventories = {"w1": [gpu(0, "NVIDIA A10G", 24)], "w2": [gpu(0, "NVIDIA H100 80GB HBM3", 80)]}
    assert unmet(parse_gpu("H100:2"), inventories)
    assert not unmet(parse_gpu("H100"), inventories)
    assert not unmet(parse_gpu("H100:2"), {})  # no worker yet: one that has them may join
    assert not unmet((), inventories)


def test_unmet_message_names_the_request_every_inventory_and_the_fix() -> None:
    inventories = {"w1": [gpu(0, "NVIDIA A10G", 24)], "w2": []}
    message = unmet_message("pair", "H100:2", parse_gpu("H100:2"), inventories)
    assert message == (
        f"'pair' needs 2 {TIMES} H100 (gpu='H100:2') and no worker has that many such GPUs "
        f"(w1: 1 {TIMES} NVIDIA A10G; w2: no GPUs); add a worker that has them or change gpu="
    )
