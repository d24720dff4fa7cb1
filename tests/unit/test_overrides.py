"""Options a call overrides (with_options(), with_concurrency()): how they stack in the SDK, the
spec a pool derives from them, and the pools the scheduler keys by them (plain functions too,
by the mechanism that gives a class's parameters pools of their own)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest

import client as modal
from client.exceptions import InvalidError
from client.with_options import in_pool
from protos import overrides as wire_overrides
from protos import stoker_pb2 as pb
from scheduler.apps import AppError, Apps
from scheduler.calls import Calls
from scheduler.cluster import Cluster
from scheduler.model import WorkerSession
from scheduler.store import Store
from tests.unit.scheduler_harness import minimal_bundle


def _spec() -> pb.FunctionSpec:
    return pb.FunctionSpec(
        name="f", gpu="A10G", cpu=1.0, max_inputs=2, timeout=300, secret_names=["base"], secret_env={"K": "v"}
    )


def test_later_options_win_field_by_field_and_secrets_are_replaced_whole() -> None:
    first = pb.FunctionOverrides(gpu="H100", timeout=30, replace_secrets=True, secret_names=["a", "b"])
    later = pb.FunctionOverrides(timeout=60, replace_secrets=True, secret_env={"X": "1"})
    stacked = wire_overrides.stacked(first, later)
    assert stacked.gpu == "H100" and stacked.timeout == 60
    assert list(stacked.secret_names) == [] and dict(stacked.secret_env) == {"X": "1"}
    kept = wire_overrides.stacked(first, pb.FunctionOverrides(cpu=2))
    assert list(kept.secret_names) == ["a", "b"] and kept.cpu == 2


def test_a_pools_spec_is_the_deployed_one_with_the_overrides_set() -> None:
    spec = _spec()
    derived = wire_overrides.apply(spec, pb.FunctionOverrides(max_inputs=4))
    assert derived.max_inputs == 4 and derived.gpu == "A10G" and derived.timeout == 300
    secrets = wire_overrides.apply(spec, pb.FunctionOverrides(replace_secrets=True, secret_names=["other"]))
    assert list(secrets.secret_names) == ["other"] and dict(secrets.secret_env) == {}
    assert list(spec.secret_names) == ["base"], "the deployed spec is left as it was"


def test_an_override_of_zero_differs_from_none() -> None:
    spec = pb.FunctionSpec(name="f", buffer_containers=3, target_inputs=2, max_inputs=4)
    derived = wire_overrides.apply(spec, pb.FunctionOverrides(buffer_containers=0, target_inputs=0))
    assert derived.buffer_containers == 0 and derived.target_inputs == 0
    assert wire_overrides.canonical(pb.FunctionOverrides(buffer_containers=0)) != b""


def test_equal_overrides_have_equal_bytes() -> None:
    one = pb.FunctionOverrides(replace_secrets=True, secret_env={"A": "1", "B": "2"}, cpu=2)
    other = pb.FunctionOverrides(cpu=2, replace_secrets=True)
    other.secret_env["B"] = "2"
    other.secret_env["A"] = "1"
    assert wire_overrides.canonical(one) == wire_overrides.canonical(other)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (pb.FunctionOverrides(cpu=0), "with_options(cpu=0.0): cpu must be a positive number"),
        (pb.FunctionOverrides(memory_mib=-1), "with_options(memory=-1): memory must be a positive number of MiB"),
        (pb.FunctionOverrides(timeout=90000), "timeout must be from 1 to 86400 seconds"),
        (pb.FunctionOverrides(buffer_containers=-2), "buffer_containers must be at least 0"),
        (pb.FunctionOverrides(max_inputs=4, target_inputs=5), "target_inputs must be between 1 and max_inputs (4)"),
    ],
)
def test_values_no_function_could_run_with_are_refused(overrides: pb.FunctionOverrides, message: str) -> None:
    with pytest.raises(wire_overrides.OverrideError, match=message.replace("(", r"\(").replace(")", r"\)")):
        wire_overrides.check(overrides)


# ---------------------------------------------------------------- the SDK


def test_with_options_stacks_onto_the_call_target_and_leaves_the_original_alone() -> None:
    app = modal.App("sdk-options")

    @app.function(timeout=100)
    def f() -> None: ...

    variant = f.with_options(gpu=["H100", "A100"], timeout=20).with_concurrency(max_inputs=8, target_inputs=4)
    sent = variant._call_target().request((), {}).options
    assert sent.gpu == "H100,A100" and sent.timeout == 20 and sent.max_inputs == 8 and sent.target_inputs == 4
    assert variant.options.timeout == 20 and variant.options.max_inputs == 8
    assert not f._call_target().request((), {}).HasField("options") and f.options.timeout == 100
    assert app.registered_functions["f"] is f

    handle = modal.Function.from_name("other", "g").with_options(env={"A": "1"})
    assert dict(handle._call_target().request((), {}).options.secret_env) == {"A": "1"}


def test_a_container_of_a_pool_runs_with_its_concurrency_and_timeout() -> None:
    app = modal.App("pool-options")

    @app.cls(timeout=100)
    class Model:
        @modal.method()
        def predict(self) -> None: ...

    overrides = wire_overrides.canonical(pb.FunctionOverrides(max_inputs=4, timeout=5))
    pooled = in_pool(Model, overrides)
    assert pooled.options is not None and pooled.options.max_inputs == 4 and pooled.options.timeout == 5
    assert Model.options is not None and Model.options.max_inputs == 1


def test_the_sdk_refuses_what_stoker_lacks_and_ignores_what_changes_nothing() -> None:
    handle = modal.Function.from_name("a", "b")
    with pytest.raises(InvalidError, match=r"^stoker does not support Function.with_options\(volumes=\) yet"):
        handle.with_options(volumes={"/data": object()})
    with pytest.raises(InvalidError, match=r"the cpu limit \(1 cores\) is below the request \(2 cores\)"):
        handle.with_options(cpu=(2.0, 1.0))
    with pytest.raises(InvalidError, match=r"max_containers must be an integer"):
        handle.with_options(max_containers=1.5)  # type: ignore[arg-type]
    handle.with_options(region="us-east", cloud="aws")  # one place: nothing to choose


# ---------------------------------------------------------------- the scheduler's pools


@pytest.fixture
def calls(tmp_path: Path) -> Calls:
    cluster = Cluster(queue_timeout=30)
    cluster.add_worker(WorkerSession(info=pb.WorkerRegister(worker_id="w1", hostname="h")))
    apps = Apps(Store(tmp_path / "stoker.db"), cluster, "ws", "localhost", "http", 8000)
    calls = Calls(apps, cluster)
    _deploy(calls, max_inputs=1)
    return calls


def _deploy(calls: Calls, max_inputs: int) -> None:
    spec = pb.FunctionSpec(name="f", max_inputs=max_inputs)
    definition = pb.AppDefinition(name="opts", entry="app.py", bundle=minimal_bundle(), functions=[spec])
    calls.apps.deploy(definition, "", False)


def _call(**options: object) -> pb.CallRequest:
    return pb.CallRequest(app_name="opts", function="f", options=pb.FunctionOverrides(**options))  # type: ignore[arg-type]


def test_a_functions_calls_with_options_share_a_pool_of_their_own(calls: Calls) -> None:
    base = calls._callable(pb.CallRequest(app_name="opts", function="f"), "")
    pool = calls._callable(_call(max_inputs=4, gpu="any"), "")
    assert pool is not base and pool.max_inputs == 4 and pool.gpu and not base.gpu
    assert calls._callable(_call(gpu="any", max_inputs=4), "") is pool
    assert calls.cluster.functions[pool.id] is pool
    assert pool.shown_name == "f.with_options(gpu='any', max_inputs=4)"
    assert calls._callable(pb.CallRequest(app_name="opts", function="f", options=pb.FunctionOverrides()), "") is base


def test_a_bad_override_is_refused_before_anything_is_placed(calls: Calls) -> None:
    with pytest.raises(AppError) as bad_gpu:
        calls._callable(_call(gpu="H100:0"), "")
    assert bad_gpu.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(AppError) as no_secret:
        calls._callable(_call(replace_secrets=True, secret_names=["missing"]), "")
    assert no_secret.value.code == grpc.StatusCode.NOT_FOUND
    assert len(calls.cluster.functions) == 1


def test_a_redeploy_moves_a_pools_waiting_calls_to_the_same_pool_of_the_new_version(calls: Calls) -> None:
    async def scenario() -> None:
        pool = calls._callable(_call(timeout=30), "")
        waiting = asyncio.ensure_future(calls.cluster.acquire_slot(pool))
        await asyncio.sleep(0)
        _deploy(calls, max_inputs=3)
        heir = calls._callable(_call(timeout=30), "")
        assert heir is not pool and heir.queue and heir.spec.max_inputs == 3 and heir.spec.timeout == 30
        waiting.cancel()

    asyncio.run(scenario())


def test_an_unused_pool_of_a_function_is_forgotten(calls: Calls) -> None:
    pool = calls._callable(_call(cpu=2), "")
    calls.cluster.tick(time.monotonic())
    assert pool.id not in calls.cluster.functions
    assert calls._callable(_call(cpu=2), "") is not pool
