"""The worker's NVML code path (worker/gpus.py) run against tests/fake_nvml/pynvml.py."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from protos import stoker_pb2 as pb
from scheduler.gpus import choose_devices, parse_gpu
from worker.gpus import GIB, inventory, read_nvml

ROOT = Path(__file__).resolve().parents[2]
FAKE_NVML = ROOT / "tests" / "fake_nvml"
DEVICES = [
    {"name": "NVIDIA H100 80GB HBM3", "memory_gib": 79.6, "utilization": 37},
    {"name": "NVIDIA A100-SXM4-40GB", "memory_gib": 40, "utilization": 0},
    {"name": "NVIDIA H100 80GB HBM3", "memory_gib": 79.6, "utilization": 100},
]


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The fake, loaded fresh and installed as `pynvml` for this test only."""
    spec = importlib.util.spec_from_file_location("pynvml", FAKE_NVML / "pynvml.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "pynvml", module)  # before running it: its dataclasses look it up there
    spec.loader.exec_module(module)
    monkeypatch.delenv("STOKER_FAKE_NVML", raising=False)
    return module


def set_devices(monkeypatch: pytest.MonkeyPatch, devices: list[dict[str, object]]) -> None:
    monkeypatch.setenv("STOKER_FAKE_NVML", json.dumps(devices))


def test_read_nvml_returns_each_device(fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    set_devices(monkeypatch, DEVICES)
    gpus = read_nvml(fake_nvml)
    assert [(g.index, g.name, g.memory_bytes, g.utilization) for g in gpus] == [
        (0, "NVIDIA H100 80GB HBM3", int(79.6 * GIB), 37),
        (1, "NVIDIA A100-SXM4-40GB", 40 * GIB, 0),
        (2, "NVIDIA H100 80GB HBM3", int(79.6 * GIB), 100),
    ]
    assert all(g.uuid.startswith("GPU-") for g in gpus)
    assert len({g.uuid for g in gpus}) == 3
    assert read_nvml(fake_nvml) == gpus  # UUIDs are stable, as real ones are


def test_read_nvml_shuts_nvml_down_again(fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    set_devices(monkeypatch, DEVICES)
    read_nvml(fake_nvml)
    with pytest.raises(fake_nvml.NVMLError_Uninitialized):
        fake_nvml.nvmlDeviceGetCount()


def test_read_nvml_reports_zero_when_utilization_is_not_supported(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_devices(monkeypatch, [{"name": "NVIDIA A100-SXM4-80GB MIG 1g.10gb", "memory_gib": 10, "utilization": None}])
    [gpu] = read_nvml(fake_nvml)
    assert (gpu.name, gpu.utilization) == ("NVIDIA A100-SXM4-80GB MIG 1g.10gb", 0)


def test_read_nvml_with_no_devices(fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    set_devices(monkeypatch, [])
    assert read_nvml(fake_nvml) == []


def test_devices_read_through_nvml_can_be_placed(fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    set_devices(monkeypatch, DEVICES)
    gpus = read_nvml(fake_nvml)
    assert choose_devices(parse_gpu("H100:2"), gpus, in_use=()) == (0, 2)
    assert choose_devices(parse_gpu("A100-80GB,A100-40GB"), gpus, in_use=()) == (1,)
    assert choose_devices(parse_gpu("H100"), gpus, in_use={0, 2}) is None


def test_inventory_imports_the_fake_as_pynvml_in_a_subprocess() -> None:
    # No monkeypatching: the real `import pynvml` in worker/gpus.py finds the fake first on the path.
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOKER_")}
    env["PYTHONPATH"] = os.pathsep.join([str(FAKE_NVML), str(ROOT), env.get("PYTHONPATH", "")])
    env["STOKER_FAKE_NVML"] = json.dumps(DEVICES)
    script = (
        "import json, pynvml\n"
        "from worker.gpus import inventory\n"
        "gpus = [[g.index, g.uuid, g.name, g.memory_bytes, g.utilization] for g in inventory('')]\n"
        "print(json.dumps({'module': pynvml.__file__, 'gpus': gpus}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert Path(seen["module"]).resolve() == FAKE_NVML / "pynvml.py"
    assert [(index, name, memory, util) for index, _, name, memory, util in seen["gpus"]] == [
        (0, "NVIDIA H100 80GB HBM3", int(79.6 * GIB), 37),
        (1, "NVIDIA A100-SXM4-40GB", 40 * GIB, 0),
        (2, "NVIDIA H100 80GB HBM3", int(79.6 * GIB), 100),
    ]
    assert all(gpu_uuid.startswith("GPU-") for _, gpu_uuid, *_ in seen["gpus"])


def test_inventory_without_a_driver_is_empty_and_says_why(
    fake_nvml: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="worker.gpus"):
        assert inventory("") == []
    records = [r for r in caplog.records if r.name == "worker.gpus"]
    assert [r.levelno for r in records] == [logging.INFO]
    assert "no NVIDIA GPUs" in records[0].getMessage()
    assert "NVML Shared Library Not Found" in records[0].getMessage()


def test_inventory_with_declared_gpus_ignores_nvml(
    fake_nvml: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    set_devices(monkeypatch, DEVICES)
    calls: list[str] = []
    monkeypatch.setattr(fake_nvml, "nvmlInit", lambda: calls.append("nvmlInit"))
    with caplog.at_level(logging.DEBUG, logger="worker.gpus"):
        gpus = inventory("A10G:24")
    assert calls == []
    assert [(g.index, g.name, g.memory_bytes) for g in gpus] == [(0, "A10G", 24 * GIB)]
    assert gpus[0].uuid.startswith("GPU-declared-")
    assert isinstance(gpus[0], pb.Gpu)
    assert not [r for r in caplog.records if r.name == "worker.gpus"]
