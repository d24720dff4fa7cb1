"""timeout=, retries= and startup_timeout= on a real cluster: calls and web requests past their
timeout, containers replaced when an input cannot be stopped, failed calls retried with their
policy's delays (web requests never), enter hooks past their startup timeout."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import Cluster, program_result, wait_until

EXCEEDED = "exceeded its timeout of 1 s (set with timeout= on its decorator)"


@pytest.fixture(scope="module")
def urls(shared_cluster: Cluster) -> dict[str, str]:
    return shared_cluster.deploy("inputs.py")


def container_ids(cluster: Cluster, function: str) -> set[str]:
    return {c.container_id for c in cluster.status().containers if c.function == function}


# ---------------------------------------------------------------- timeout=


def test_an_async_call_past_its_timeout_fails_and_its_container_goes_on(
    shared_cluster: Cluster, urls: dict[str, str]
) -> None:
    got = program_result(
        shared_cluster,
        """
        import json
        import client as modal
        from client.exceptions import FunctionTimeoutError

        f = modal.Function.from_name("inputs", "slow_async")
        before = f.remote(0)
        try:
            f.remote(30)
            error = None
        except FunctionTimeoutError as exc:
            error = [type(exc).__name__, str(exc)]
        print(json.dumps({"before": before, "error": error, "after": f.remote(0)}))
        """,
    )
    assert isinstance(got, dict)
    assert got["error"] == ["FunctionTimeoutError", f"slow_async {EXCEEDED}"]
    # An async function is cancelled at its timeout: its container takes the next input.
    assert got["after"] == got["before"]


def test_a_sync_call_past_its_timeout_fails_and_its_container_is_replaced(
    shared_cluster: Cluster, urls: dict[str, str]
) -> None:
    got = program_result(
        shared_cluster,
        """
        import json
        import client as modal
        from client.exceptions import FunctionTimeoutError

        f = modal.Function.from_name("inputs", "slow_sync")
        before = f.remote(0)
        try:
            f.remote(60)
            error = None
        except FunctionTimeoutError as exc:
            error = str(exc)
        print(json.dumps({"before": before, "error": error, "after": f.remote(0)}))
        """,
    )
    assert isinstance(got, dict)
    assert got["error"] == f"slow_sync {EXCEEDED}"
    # Its thread cannot be stopped: the next input went to another container, and the old one exits
    # (long before the 60 s its thread sleeps), saying why.
    assert got["after"] != got["before"]
    assert wait_until(lambda: got["before"] not in container_ids(shared_cluster, "slow_sync"), 30)
    logs = shared_cluster.stoker("app", "logs", "inputs").stdout
    retiring = [line for line in logs.splitlines() if got["before"] in line and "will be replaced" in line]
    assert retiring and "slow_sync exceeded its timeout of 1 s" in retiring[0], logs


def test_a_web_request_past_its_timeout_gets_504_with_the_words(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    fast = shared_cluster.get(urls["slow_web"], params={"seconds": 0})
    assert fast.status_code == 200, fast.text
    response = shared_cluster.get(urls["slow_web"], params={"seconds": 30})
    assert response.status_code == 504
    assert "slow_web exceeded its timeout of 1 s" in response.text
    again = shared_cluster.get(urls["slow_web"], params={"seconds": 0})
    assert again.json() == fast.json()  # cancelled: the same container serves on


def test_a_sync_web_request_past_its_timeout_gets_504_and_its_container_is_replaced(
    shared_cluster: Cluster, urls: dict[str, str]
) -> None:
    before = shared_cluster.get(urls["slow_web_sync"]).json()["container"]
    response = shared_cluster.get(urls["slow_web_sync"], params={"seconds": 60})
    assert response.status_code == 504
    assert "slow_web_sync exceeded its timeout of 1 s" in response.text
    after = shared_cluster.get(urls["slow_web_sync"]).json()["container"]
    assert after != before
    assert wait_until(lambda: before not in container_ids(shared_cluster, "slow_web_sync"), 30)


def test_a_streamed_response_past_its_timeout_is_cut_off(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    whole = shared_cluster.get(urls["slow_stream"], params={"seconds": 0})
    assert whole.text == "first chunk\nlast chunk\n"
    with pytest.raises(httpx.RemoteProtocolError):
        shared_cluster.get(urls["slow_stream"], params={"seconds": 30})


def test_a_websocket_past_its_timeout_is_closed_with_the_words(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    async def talk() -> tuple[str, int | None, str]:
        ws_url = urls["slow_stream"].replace("http://", "ws://") + "/ws"
        async with websockets.connect(ws_url, host="127.0.0.1", port=shared_cluster.http_port) as ws:
            first = str(await ws.recv())
            try:
                await ws.recv()
            except websockets.ConnectionClosed as closed:
                return first, closed.rcvd.code if closed.rcvd else None, closed.rcvd.reason if closed.rcvd else ""
        raise AssertionError("the connection was not closed")

    first, code, reason = asyncio.run(talk())
    assert first == "accepted"
    assert code == 1011
    assert reason.startswith("slow_stream exceeded its timeout of 1 s")


def test_a_method_past_its_timeout_fails(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    got = program_result(
        shared_cluster,
        """
        import json
        import client as modal
        from client.exceptions import FunctionTimeoutError

        slow = modal.Cls.from_name("inputs", "Slow")()
        try:
            slow.wait.remote(30)
            error = None
        except FunctionTimeoutError as exc:
            error = str(exc)
        print(json.dumps({"error": error, "after": slow.wait.remote(0)}))
        """,
    )
    assert got == {"error": f"Slow.wait {EXCEEDED}", "after": "done"}


# ---------------------------------------------------------------- retries=


def attempts(path: Path) -> list[float]:
    return [float(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_call_that_fails_twice_succeeds_with_two_retries_after_growing_delays(
    shared_cluster: Cluster, urls: dict[str, str], shared_tmp: Path
) -> None:
    path = shared_tmp / "flaky"
    got = program_result(
        shared_cluster,
        f"""
        import json
        import client as modal
        print(json.dumps(modal.Function.from_name("inputs", "flaky").remote({str(path)!r}, 2)))
        """,
    )
    assert got == 3
    began = attempts(path)
    assert len(began) == 3
    # Retries(initial_delay=0.2, backoff_coefficient=5.0, max_delay=1.0): the second wait is the longer.
    assert began[1] - began[0] < began[2] - began[1]


def test_a_call_that_fails_more_often_than_its_retries_raises_the_last_failure(
    shared_cluster: Cluster, urls: dict[str, str], shared_tmp: Path
) -> None:
    path = shared_tmp / "flaky_once"
    got = program_result(
        shared_cluster,
        f"""
        import json
        import client as modal
        try:
            modal.Function.from_name("inputs", "flaky_once").remote({str(path)!r}, 2)
            print(json.dumps(None))
        except RuntimeError as exc:
            print(json.dumps(str(exc)))
        """,
    )
    assert got == "attempt 2 fails"
    assert len(attempts(path)) == 2  # retries=1: one retry, no more


def test_with_options_retries_replaces_the_deployed_policy(
    shared_cluster: Cluster, urls: dict[str, str], shared_tmp: Path
) -> None:
    more, none = shared_tmp / "more", shared_tmp / "none"
    got = program_result(
        shared_cluster,
        f"""
        import json
        import client as modal
        f = modal.Function.from_name("inputs", "flaky_once")
        more = f.with_options(retries=modal.Retries(max_retries=3, initial_delay=0.0)).remote({str(more)!r}, 3)
        try:
            f.with_options(retries=0).remote({str(none)!r}, 1)
            print(json.dumps([more, None]))
        except RuntimeError as exc:
            print(json.dumps([more, str(exc)]))
        """,
    )
    # Deployed with retries=1: three failures pass with three retries, one fails with none.
    assert got == [4, "attempt 1 fails"]
    assert len(attempts(more)) == 4 and len(attempts(none)) == 1


def test_spawned_and_mapped_calls_are_retried_too(
    shared_cluster: Cluster, urls: dict[str, str], shared_tmp: Path
) -> None:
    got = program_result(
        shared_cluster,
        f"""
        import json
        import client as modal
        f = modal.Function.from_name("inputs", "flaky_once")
        spawned = f.spawn({str(shared_tmp / "spawned")!r}, 1).get(timeout=60)
        mapped = list(f.map([{str(shared_tmp / "m1")!r}, {str(shared_tmp / "m2")!r}], [1, 0]))
        print(json.dumps({{"spawned": spawned, "mapped": mapped}}))
        """,
    )
    assert got == {"spawned": 2, "mapped": [2, 1]}


def test_a_call_whose_container_died_is_retried(
    shared_cluster: Cluster, urls: dict[str, str], shared_tmp: Path
) -> None:
    path = shared_tmp / "dies"
    got = program_result(
        shared_cluster,
        f"""
        import json
        import client as modal
        print(json.dumps(modal.Function.from_name("inputs", "dies_first").remote({str(path)!r})))
        """,
    )
    assert got == "survived"
    assert len(attempts(path)) == 2


def test_a_retried_generator_skips_the_items_its_caller_has(
    shared_cluster: Cluster, urls: dict[str, str], shared_tmp: Path
) -> None:
    path = shared_tmp / "gen"
    got = program_result(
        shared_cluster,
        f"""
        import json
        import client as modal
        print(json.dumps(list(modal.Function.from_name("inputs", "flaky_gen").remote_gen({str(path)!r}))))
        """,
    )
    assert got == [0, 1, 2, 3]
    assert len(attempts(path)) == 2


def test_a_class_method_is_retried_with_its_class_policy(
    shared_cluster: Cluster, urls: dict[str, str], shared_tmp: Path
) -> None:
    path = shared_tmp / "method"
    got = program_result(
        shared_cluster,
        f"""
        import json
        import client as modal
        print(json.dumps(modal.Cls.from_name("inputs", "Flaky")().once.remote({str(path)!r})))
        """,
    )
    assert got == 2


def test_web_requests_are_never_retried(shared_cluster: Cluster, urls: dict[str, str], shared_tmp: Path) -> None:
    path = shared_tmp / "web"
    response = shared_cluster.get(urls["flaky_web"], params={"path": str(path)})
    assert response.status_code == 500
    assert len(attempts(path)) == 1


# ---------------------------------------------------------------- startup_timeout=


def test_enter_hooks_past_the_startup_timeout_fail_calls_and_requests(
    shared_cluster: Cluster, urls: dict[str, str]
) -> None:
    words = "the @modal.enter methods of SlowStart ran longer than startup_timeout=1 s (in SlowStart.load)"
    response = shared_cluster.get(urls["SlowStart.web"])
    assert response.status_code == 503
    assert words in response.text
    got = program_result(
        shared_cluster,
        """
        import json
        import client as modal
        try:
            modal.Cls.from_name("inputs", "SlowStart")().predict.remote()
            print(json.dumps(None))
        except Exception as exc:
            print(json.dumps(str(exc)))
        """,
    )
    assert isinstance(got, str) and words in got


# ---------------------------------------------------------------- deploy-time limits


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ("timeout=0", "timeout must be between 1 second and 24 hours (86400 s), got 0"),
        ("timeout=90000", "timeout must be between 1 second and 24 hours (86400 s), got 90000"),
        ("startup_timeout=0.5", "startup_timeout must be between 1 second and 24 hours (86400 s), got 0.5"),
        ("retries=11", "Invalid retries number: 11. Retries must be between 0 and 10."),
        ("retries=modal.Retries(max_retries=1, max_delay=120)", "Invalid max_delay argument: 120"),
    ],
)
def test_options_out_of_range_fail_deploy_with_the_range(
    shared_cluster: Cluster, tmp_path: Path, options: str, words: str
) -> None:
    app_file = tmp_path / "out_of_range.py"
    app_file.write_text(
        f'import modal\n\napp = modal.App("out-of-range")\n\n\n@app.function({options})\ndef f():\n    return 1\n'
    )
    result = shared_cluster.stoker("deploy", str(app_file))
    assert result.returncode == 1, result.stdout + result.stderr
    assert words in result.stderr
    assert "out-of-range" not in shared_cluster.stoker("app", "list").stdout
