"""FunctionCall on a real cluster: call graphs of spawned calls (children with ids, functions,
statuses), cancel (the container hears it; get() raises InputCancellation), cancel with
terminate_containers, and the ids of the input a container runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cluster, alive, host_pid, last_json, run_program, running_cluster, wait_until


@pytest.fixture(scope="module")
def graph_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("graph")) as c:
        c.deploy("call_graph.py")
        yield c


GRAPH_AS_JSON = """
def as_json(info):
    return {
        "input_id": info.input_id,
        "function_call_id": info.function_call_id,
        "task_id": info.task_id,
        "status": info.status.name,
        "function_name": info.function_name,
        "module_name": info.module_name,
        "children": [as_json(c) for c in info.children],
    }
"""


def test_a_spawned_call_graph_holds_the_calls_made_while_it_ran(graph_cluster: Cluster) -> None:
    got = last_json(
        run_program(
            graph_cluster,
            GRAPH_AS_JSON
            + """
import json
import client as modal
from client.call_graph import InputInfo, InputStatus
call = modal.Function.from_name("call-graph", "parent").spawn(41)
result = call.get(timeout=60)
graph = modal.FunctionCall.from_id(call.object_id).get_call_graph()
assert all(isinstance(g, InputInfo) and isinstance(g.status, InputStatus) for g in graph)
print(json.dumps({"id": call.object_id, "result": result, "graph": [as_json(g) for g in graph]}))
""",
        )
    )
    assert isinstance(got, dict)
    [root] = got["graph"]
    assert root["function_call_id"] == got["id"]
    assert root["function_name"] == "parent" and root["module_name"] == "call_graph"
    assert root["status"] == "SUCCESS"
    assert root["task_id"].startswith("ct-")  # the container that ran it
    # The input knew its own ids while it ran.
    assert got["result"] == {"ids": {"call": got["id"], "input": root["input_id"]}, "leaf": 42}
    assert root["input_id"].startswith("in-")
    children = root["children"]
    assert [(c["function_name"], c["status"]) for c in children] == [("leaf", "SUCCESS"), ("broken", "FAILURE")]
    ids = {c["function_call_id"] for c in children} | {got["id"]}
    assert len(ids) == 3 and all(i.startswith("fc-") for i in ids)
    assert all(c["input_id"].startswith("in-") and c["task_id"].startswith("ct-") for c in children)
    assert all(c["children"] == [] for c in children)


def test_calls_of_a_map_and_of_async_code_are_children_too(graph_cluster: Cluster) -> None:
    got = last_json(
        run_program(
            graph_cluster,
            """
import json
import client as modal
mapped = modal.Function.from_name("call-graph", "map_parent").spawn(5)
values = mapped.get(timeout=60)
graph = mapped.get_call_graph()
spawned = modal.Function.from_name("call-graph", "async_parent").spawn(3)
inside = spawned.get(timeout=60)
print(json.dumps({
    "values": values,
    "children": sorted((c.function_name, c.status.name) for c in graph[0].children),
    "inside": inside,
}))
""",
        )
    )
    assert isinstance(got, dict)
    assert got["values"] == [1, 2, 3, 4, 5]
    assert got["children"] == [["leaf", "SUCCESS"]] * 5
    # The graph read from inside the running input: its children so far.
    assert got["inside"] == {"values": [1, 2, 3], "children": ["leaf", "leaf", "leaf"]}


def test_input_ids_inside_and_outside_a_container(graph_cluster: Cluster) -> None:
    got = last_json(
        run_program(
            graph_cluster,
            """
import json
import client as modal
ids = modal.Function.from_name("call-graph", "ids")
first, second = ids.remote(), ids.remote()
try:
    modal.FunctionCall.from_id(first["call"]).get_call_graph()
    graph_of_remote = ""
except modal.NotFoundError as exc:
    graph_of_remote = str(exc)
print(json.dumps({
    "outside": [modal.current_function_call_id(), modal.current_input_id()],
    "first": first, "second": second, "graph_of_remote": graph_of_remote,
}))
""",
        )
    )
    assert isinstance(got, dict)
    assert got["outside"] == [None, None]
    assert got["first"]["call"].startswith("fc-") and got["first"]["input"].startswith("in-")
    assert got["first"]["call"] != got["second"]["call"] and got["first"]["input"] != got["second"]["input"]
    # A .remote() call from outside is no spawned call: no graph is kept for it.
    assert "graphs are kept for spawned calls" in got["graph_of_remote"]


CANCEL = """
import json, sys, time
import client as modal
from client.exceptions import InputCancellation
directory, function, terminate = sys.argv[1], sys.argv[2], sys.argv[3] == "terminate"
call = modal.Function.from_name("call-graph", function).spawn(directory)
print(json.dumps({"id": call.object_id}), flush=True)
while not __import__("os").path.exists(directory + "/started"):
    time.sleep(0.05)
call.cancel(terminate_containers=terminate)
try:
    modal.FunctionCall.from_id(call.object_id).get(timeout=60)
    outcome = "returned"
except InputCancellation as exc:
    outcome = f"InputCancellation: {exc}"
graph = call.get_call_graph()
try:
    modal.FunctionCall.from_id("fc-nobody").cancel()
    unknown = ""
except modal.NotFoundError as exc:
    unknown = str(exc)
print(json.dumps({"outcome": outcome, "status": graph[0].status.name, "unknown": unknown}))
"""


def test_cancel_stops_a_running_spawned_call(graph_cluster: Cluster, shared_tmp: Path) -> None:
    result = run_program(graph_cluster, CANCEL, str(shared_tmp), "waits_for_cancel", "keep")
    got = last_json(result)
    call_id = json.loads(result.stdout.splitlines()[0])["id"]
    assert isinstance(got, dict)
    assert got["outcome"] == f"InputCancellation: the function call {call_id} was cancelled: it has no result"
    assert got["status"] == "TERMINATED"
    assert "no spawned call 'fc-nobody'" in got["unknown"]
    # The async function heard the cancel, in the input it ran.
    assert wait_until(lambda: (shared_tmp / "cancelled").exists(), 30)
    assert (shared_tmp / "cancelled").read_text() == call_id
    # Without terminate_containers its container serves on.
    pid = host_pid((shared_tmp / "started").read_text())
    assert alive(pid) and graph_cluster.warm_containers("waits_for_cancel")


def test_cancel_with_terminate_containers_stops_its_container(graph_cluster: Cluster, shared_tmp: Path) -> None:
    result = run_program(graph_cluster, CANCEL, str(shared_tmp), "stuck", "terminate")
    got = last_json(result)
    assert isinstance(got, dict)
    assert got["outcome"].startswith("InputCancellation: ") and got["status"] == "TERMINATED"
    # A sync function cannot be interrupted: its container was stopped instead.
    started = (shared_tmp / "started").read_text()
    gone = lambda: host_pid(started, missing_ok=True) == 0  # noqa: E731
    assert wait_until(gone, 30), "the container running the cancelled call is still alive"
    assert wait_until(lambda: not any(c.function == "stuck" for c in graph_cluster.status().containers), 30)


def test_a_cancelled_call_is_cancelled_from_aio_code_too(graph_cluster: Cluster, shared_tmp: Path) -> None:
    got = last_json(
        run_program(
            graph_cluster,
            """
import asyncio, json, os, sys
import client as modal
from client.exceptions import InputCancellation

async def main(directory):
    call = await modal.Function.from_name("call-graph", "waits_for_cancel").spawn.aio(directory)
    while not os.path.exists(directory + "/started"):
        await asyncio.sleep(0.05)
    await call.cancel.aio()
    try:
        await call.get.aio(timeout=60)
        return "returned"
    except InputCancellation:
        graph = await call.get_call_graph.aio()
        return graph[0].status.name

print(json.dumps(asyncio.run(main(sys.argv[1]))))
""",
            str(shared_tmp),
        )
    )
    assert got == "TERMINATED"
    assert wait_until(lambda: (shared_tmp / "cancelled").exists(), 30)
