"""Function calls on a real cluster: the seed's streaming and .map() examples through HTTP, and
`.remote()`, `.remote_gen()`, `.map()`, `.spawn()`, `Function.from_name` from plain Python
programs run as subprocesses, as a user would run them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from tests.conftest import Cluster, Serve, program_result, run_program, running_cluster, split_url, wait_until


@pytest.fixture(scope="module")
def gpu_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster whose worker declares one GPU, so `gpu="any"` functions can be placed."""
    with running_cluster(tmp_path_factory.mktemp("calls"), STOKER_WORKER_GPUS="A10G:24") as c:
        yield c


@pytest.fixture(scope="module")
def calls_app(gpu_cluster: Cluster) -> dict[str, str]:
    return gpu_cluster.deploy("calls.py")


# ---------------------------------------------------------------- the seed's examples


def test_seed_streaming_from_functions_arrives_spread_in_time(gpu_cluster: Cluster) -> None:
    url = gpu_cluster.deploy("seed_stream_functions.py")["hook"]
    base, host = split_url(url)
    arrivals: list[bytes] = []
    with gpu_cluster.client.stream("GET", base + "/", headers={"host": host}, timeout=90) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        arrivals.extend(response.iter_raw())
    items = [f"data: result {i}\n\n".encode() for i in range(10)]
    # A second between items: each reaches the client on its own, as it is yielded; anything
    # that buffered on the way would have delivered them together.
    assert arrivals == items, "the items arrived together, not as they were yielded"
    # process_gpu ran in a container of its own, holding the GPU.
    gpu_holders = [c for c in gpu_cluster.status().containers if c.function == "process_gpu"]
    assert gpu_holders and list(gpu_holders[0].gpu_indices) == [0]


def test_seed_map_streams_segments_in_order(gpu_cluster: Cluster) -> None:
    url = gpu_cluster.deploy("seed_map.py")["stream_parallel"]
    response = gpu_cluster.get(url)
    assert response.status_code == 200
    assert response.text == "".join(f"segment {i}\n" for i in range(10))


# ---------------------------------------------------------------- from a plain Python program


def test_remote_returns_the_result(gpu_cluster: Cluster, calls_app: dict[str, str]) -> None:
    assert program_result(
        gpu_cluster,
        """
        import json
        import client as modal
        square = modal.Function.from_name("calls", "square")
        add = modal.Function.from_name("calls", "async_add")
        print(json.dumps([square.remote(7), square.remote(x=9), add.remote(2, b=3)]))
        """,
    ) == [49, 81, 5]


def test_remote_gen_yields_sync_and_async_generators(gpu_cluster: Cluster, calls_app: dict[str, str]) -> None:
    assert program_result(
        gpu_cluster,
        """
        import json
        import client as modal
        down = list(modal.Function.from_name("calls", "countdown").remote_gen(3))
        up = [item["i"] for item in modal.Function.from_name("calls", "async_count").remote_gen(40)]
        print(json.dumps([down, up]))
        """,
    ) == [[3, 2, 1], list(range(40))]


def test_map_unordered_with_exceptions_returned(gpu_cluster: Cluster, calls_app: dict[str, str]) -> None:
    got = program_result(
        gpu_cluster,
        """
        import json
        import client as modal
        f = modal.Function.from_name("calls", "fail_on")
        out = list(f.map(range(8), kwargs={"bad": (2, 5)}, order_outputs=False, return_exceptions=True))
        ordered = list(f.map(range(8)))
        try:
            list(f.map(range(8), kwargs={"bad": (3,)}))
            raised = None
        except ValueError as exc:
            raised = str(exc)
        print(json.dumps({
            "values": sorted(v for v in out if isinstance(v, int)),
            "errors": sorted(str(v) for v in out if isinstance(v, Exception)),
            "types": sorted({type(v).__name__ for v in out}),
            "ordered": ordered,
            "raised": raised,
        }))
        """,
    )
    assert got == {
        "values": [0, 1, 3, 4, 6, 7],
        "errors": ["input 2 is bad", "input 5 is bad"],
        "types": ["ValueError", "int"],
        "ordered": list(range(8)),
        "raised": "input 3 is bad",
    }


def test_spawn_then_get_with_timeout(gpu_cluster: Cluster, calls_app: dict[str, str]) -> None:
    got = program_result(
        gpu_cluster,
        """
        import json
        import client as modal
        slow = modal.Function.from_name("calls", "slow")
        call = slow.spawn(1, "late")
        again = modal.FunctionCall.from_id(call.object_id)
        value = again.get(timeout=60)
        pending = slow.spawn(30, "never waited for")
        try:
            pending.get(timeout=0.5)
            timed_out = False
        except TimeoutError:
            timed_out = True
        try:
            modal.FunctionCall.from_id("fc-unknown").get(timeout=1)
            unknown = ""
        except modal.NotFoundError as exc:
            unknown = str(exc)
        print(json.dumps([call.object_id.startswith("fc-"), value, timed_out, unknown]))
        """,
    )
    assert got[:3] == [True, "late", True]
    assert "no spawned call 'fc-unknown'" in got[3]


def test_callee_exception_is_reraised_with_its_traceback(gpu_cluster: Cluster, calls_app: dict[str, str]) -> None:
    result = run_program(
        gpu_cluster,
        """
        import client as modal
        modal.Function.from_name("calls", "explode").remote("boom")
        """,
    )
    assert result.returncode == 1
    # The caller's traceback ends in the callee's own exception, with where it was raised.
    assert "KeyError: 'boom'" in result.stderr
    assert "Traceback of the function call" in result.stderr
    assert "in inner\n    raise KeyError(message)" in result.stderr
    assert "in explode\n    inner()" in result.stderr
    assert "worker/runtime" not in result.stderr  # the runtime's own frames are left out


def test_a_timeout_error_the_function_raises_is_its_own(gpu_cluster: Cluster, calls_app: dict[str, str]) -> None:
    got = program_result(
        gpu_cluster,
        """
        import json
        import client as modal
        try:
            modal.Function.from_name("calls", "own_timeout").remote()
        except TimeoutError as exc:
            print(json.dumps(str(exc)))
        """,
    )
    assert got == "the function's own"


def test_exception_that_does_not_pickle_becomes_a_clear_error(gpu_cluster: Cluster, calls_app: dict[str, str]) -> None:
    got = program_result(
        gpu_cluster,
        """
        import json
        import client as modal
        try:
            modal.Function.from_name("calls", "explode_unpicklable").remote()
        except modal.RemoteError as exc:
            print(json.dumps([exc.type_name, exc.remote_message, exc.remote_traceback]))
        """,
    )
    assert got[0] == "calls.Unpicklable"
    assert got[1] == "cannot travel"
    assert 'raise Unpicklable("cannot travel")' in got[2]


def test_wrong_kind_of_call_is_refused_clearly(gpu_cluster: Cluster, calls_app: dict[str, str]) -> None:
    got = program_result(
        gpu_cluster,
        """
        import json
        import client as modal
        messages = []
        for name, how in [("web", "remote"), ("countdown", "remote"), ("square", "remote_gen"), ("web", "spawn")]:
            f = modal.Function.from_name("calls", name)
            try:
                result = getattr(f, how)(3)
                if how == "remote_gen":
                    list(result)
                messages.append(None)
            except modal.InvalidError as exc:
                messages.append(str(exc))
        print(json.dumps(messages))
        """,
    )
    web_url = calls_app["web"]
    assert "web is a web function" in got[0] and web_url in got[0]
    assert "countdown is a generator function: call it with .remote_gen()" in got[1]
    assert "square is not a generator function: call it with .remote()" in got[2]
    assert "web is a web function" in got[3] and web_url in got[3]


def test_from_name_web_url_and_unknown_names(gpu_cluster: Cluster, calls_app: dict[str, str]) -> None:
    got = program_result(
        gpu_cluster,
        """
        import json
        import client as modal
        url = modal.Function.from_name("calls", "web").get_web_url()
        plain = modal.Function.from_name("calls", "square").get_web_url()
        errors = []
        for app_name, name in [("calls", "nope"), ("no-such-app", "square")]:
            handle = modal.Function.from_name(app_name, name)  # looked up on first use, as in Modal
            try:
                handle.remote(1)
                errors.append(None)
            except modal.NotFoundError as exc:
                errors.append(str(exc))
        try:
            modal.Function.from_name("calls", "nope").hydrate()
        except modal.NotFoundError as exc:
            errors.append(str(exc))
        print(json.dumps([url, plain, errors]))
        """,
    )
    assert got[0] == calls_app["web"]
    assert got[1] is None
    assert "app 'calls' has no function named 'nope'" in got[2][0] and "square" in got[2][0]
    assert "no deployed app named 'no-such-app'" in got[2][1]
    assert got[2][2] == got[2][0]


def test_caller_leaving_cancels_the_call_in_the_container(
    gpu_cluster: Cluster, calls_app: dict[str, str], shared_tmp: Path
) -> None:
    marks = shared_tmp / "ticks"
    got = program_result(
        gpu_cluster,
        f"""
        import json
        import client as modal
        items = modal.Function.from_name("calls", "ticker").remote_gen({str(marks)!r})
        taken = [next(items) for _ in range(3)]
        items.close()
        print(json.dumps(taken))
        """,
    )
    assert got == [0, 1, 2]

    def lines() -> int:
        return len(marks.read_text().splitlines())

    # The generator stops being pulled soon after the caller left (at most a credit window on).
    time.sleep(2)
    settled = lines()
    time.sleep(1.5)
    assert lines() == settled, "the generator kept running after its caller went away"
    assert settled < 3 + 16 + 5
    assert wait_until(
        lambda: all(c.in_flight == 0 for c in gpu_cluster.status().containers if c.function == "ticker"), 10
    )


def test_container_dying_mid_call_gives_a_clear_error(gpu_cluster: Cluster, calls_app: dict[str, str]) -> None:
    got = program_result(
        gpu_cluster,
        """
        import json
        import client as modal
        try:
            modal.Function.from_name("calls", "die_midway").remote()
            print(json.dumps(None))
        except modal.ExecutionError as exc:
            print(json.dumps(str(exc)))
        """,
    )
    assert got is not None and "stopped during the call" in got and "die_midway" in got


def test_container_credential_is_good_for_calls_only(gpu_cluster: Cluster, calls_app: dict[str, str]) -> None:
    credential = program_result(
        gpu_cluster,
        """
        import json
        import client as modal
        print(json.dumps(modal.Function.from_name("calls", "credential").remote()))
        """,
    )
    assert isinstance(credential, str) and credential.startswith("call.")
    assert credential != gpu_cluster.token
    metadata = (("authorization", f"Bearer {credential}"),)
    with grpc.insecure_channel(gpu_cluster.scheduler) as channel:
        stub = pb_grpc.SchedulerStub(channel)
        found = stub.LookupFunction(
            pb.LookupFunctionRequest(app_name="calls", function="square"), metadata=metadata, timeout=10
        )
        assert found.function == "square"
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListApps(pb.ListAppsRequest(), metadata=metadata, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "only for function calls" in (refused.value.details() or "")
        forged = credential[:-4] + "0000"
        with pytest.raises(grpc.RpcError) as bad:
            stub.LookupFunction(
                pb.LookupFunctionRequest(app_name="calls", function="square"),
                metadata=(("authorization", f"Bearer {forged}"),),
                timeout=10,
            )
        assert bad.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_min_containers_warms_a_function_without_traffic_and_map_fans_out(
    gpu_cluster: Cluster, calls_app: dict[str, str]
) -> None:
    assert wait_until(lambda: len(gpu_cluster.warm_containers("pid_after")) >= 1, 60), (
        "min_containers=1 did not start a container"
    )
    pids = program_result(
        gpu_cluster,
        """
        import json
        import client as modal
        print(json.dumps(list(modal.Function.from_name("calls", "pid_after").map([1.0] * 6))))
        """,
    )
    assert isinstance(pids, list) and len(pids) == 6
    assert len(set(pids)) >= 2, "six one-second inputs all ran in one container"


RELAY_APP = """
import modal

app = modal.App("relay")


@app.function()
def who():
    return "WHO"


@app.function()
@modal.fastapi_endpoint()
def ask():
    return who.remote()
"""


def test_a_served_app_calls_its_own_functions_not_the_deployed_ones(gpu_cluster: Cluster, tmp_path: Path) -> None:
    deployed_file = tmp_path / "deployed" / "relay.py"
    served_file = tmp_path / "served" / "relay.py"
    for path, who in [(deployed_file, "deployed"), (served_file, "served")]:
        path.parent.mkdir()
        path.write_text(RELAY_APP.replace("WHO", who))
    deployed_url = gpu_cluster.deploy(deployed_file)["ask"]
    serve = Serve(served_file, gpu_cluster.env)
    try:
        served_url = serve.url("ask")
        assert gpu_cluster.get(served_url).json() == "served"
        assert gpu_cluster.get(deployed_url).json() == "deployed"
    finally:
        serve.stop()


def test_max_inputs_runs_sync_calls_side_by_side_in_one_container(
    gpu_cluster: Cluster, calls_app: dict[str, str]
) -> None:
    visits = program_result(
        gpu_cluster,
        """
        import json
        import client as modal
        print(json.dumps(list(modal.Function.from_name("calls", "overlap").map([2.0] * 4))))
        """,
    )
    assert isinstance(visits, list) and len(visits) == 4
    assert len({v["pid"] for v in visits}) == 1  # max_containers=1
    # Four two-second inputs in threads of one container: they overlap rather than queue.
    assert min(v["end"] for v in visits) > max(v["start"] for v in visits)


def test_aio_forms_from_an_async_endpoint(gpu_cluster: Cluster, calls_app: dict[str, str]) -> None:
    response = gpu_cluster.get(calls_app["async_caller"], "/?n=3")
    assert response.status_code == 200, response.text
    assert response.json() == {"square": 9, "items": [3, 2, 1], "mapped": [0, 1, 4], "later": 16}


def test_an_oversized_result_fails_that_call_only(gpu_cluster: Cluster, calls_app: dict[str, str]) -> None:
    got = program_result(
        gpu_cluster,
        """
        import json
        import client as modal
        from client.call_codec import PayloadTooLarge
        sized = modal.Function.from_name("calls", "sized")
        try:
            sized.remote(61 * 2**20)
            error = None
        except PayloadTooLarge as exc:
            error = str(exc)
        print(json.dumps([error, len(sized.remote(10))]))  # the same container still answers
        """,
    )
    assert isinstance(got, list) and "the function's return value pickles to" in got[0]
    assert got[1] == 10
