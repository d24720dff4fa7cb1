"""Modal's cpu= and memory= in the SDK: a number is the request, a (request, limit) pair also
sets the limit, in @app.function, @app.cls and with_options(); bad ones are clear errors."""

from __future__ import annotations

import pytest

import client as modal
from client.app import App
from client.exceptions import InvalidError
from protos import overrides as wire_overrides
from protos import stoker_pb2 as pb


def handler() -> None: ...


def test_a_number_is_the_request_and_a_pair_sets_the_limit_too(app: App) -> None:
    spec = app.function(name="plain", cpu=0.5, memory=128)(handler).to_proto()
    assert (spec.cpu, spec.cpu_limit, spec.memory_mib, spec.memory_limit_mib) == (0.5, 0.0, 128, 0)
    spec = app.function(name="paired", cpu=(0.5, 2), memory=(128, 256))(handler).to_proto()
    assert (spec.cpu, spec.cpu_limit, spec.memory_mib, spec.memory_limit_mib) == (0.5, 2.0, 128, 256)
    spec = app.function(name="unset")(handler).to_proto()
    assert (spec.cpu, spec.cpu_limit, spec.memory_mib, spec.memory_limit_mib) == (0.0, 0.0, 0, 0)


def test_a_class_takes_the_pairs_too(app: App) -> None:
    @app.cls(cpu=(1.0, 1.0), memory=(64, 512))
    class Model:
        @modal.method()
        def predict(self) -> None: ...

    spec = Model.to_proto()  # type: ignore[attr-defined]
    assert (spec.cpu, spec.cpu_limit, spec.memory_mib, spec.memory_limit_mib) == (1.0, 1.0, 64, 512)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"memory": (256, 128)},
            r"^@app.function\(memory=\(256, 128\)\): the memory limit \(128 MiB\) is below the request \(256 MiB\)",
        ),
        ({"cpu": (2.0, 1.0)}, r"the cpu limit \(1 cores\) is below the request \(2 cores\)"),
        ({"memory": 1.5}, r"memory must be an integer number of MiB \(the request\) or a \(request, limit\) pair"),
        ({"memory": (1, 2, 3)}, r"memory must be an integer number of MiB"),
        ({"cpu": "lots"}, r"cpu must be a number of cores"),
        ({"cpu": (0, 1)}, r"above 0"),
    ],
)
def test_a_bad_pair_is_a_clear_error(app: App, options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidError, match=message):
        app.function(**options)(handler)  # type: ignore[arg-type]


def test_with_options_replaces_request_and_limit_both() -> None:
    handle = modal.Function.from_name("a", "b")
    paired = wire_overrides.parse(handle.with_options(cpu=(1, 3), memory=(128, 256)).target.options)
    assert (paired.cpu, paired.cpu_limit, paired.memory_mib, paired.memory_limit_mib) == (1.0, 3.0, 128, 256)
    later = wire_overrides.parse(handle.with_options(memory=(128, 256)).with_options(memory=512).target.options)
    assert later.memory_mib == 512 and later.HasField("memory_limit_mib") and later.memory_limit_mib == 0
    spec = wire_overrides.apply(pb.FunctionSpec(memory_mib=128, memory_limit_mib=256), later)
    assert (spec.memory_mib, spec.memory_limit_mib) == (512, 0), "a number alone: no limit left"
    assert wire_overrides.describe(paired) == "cpu=1.0, cpu_limit=3.0, memory_mib=128, memory_limit_mib=256"
    with pytest.raises(InvalidError, match=r"^with_options\(memory=\(256, 128\)\): the memory limit"):
        handle.with_options(memory=(256, 128))


def test_overrides_from_the_wire_are_checked_too() -> None:
    with pytest.raises(wire_overrides.OverrideError, match=r"the limit must be at least the request"):
        wire_overrides.check(pb.FunctionOverrides(cpu=2, cpu_limit=1))
    wire_overrides.check(pb.FunctionOverrides(cpu=2, cpu_limit=0))  # 0: no limit
