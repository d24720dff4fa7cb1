"""The scheduler's call graphs (which calls join which tree, bounds) and the cancel of spawned
calls; the SDK's reading of a graph."""

from __future__ import annotations

import asyncio

import pytest

from client import call_graph as sdk_graph
from protos import stoker_pb2 as pb
from scheduler import call_graph
from scheduler.call_graph import CallGraphs
from scheduler.spawned import SpawnedCalls, SpawnedCancelled


def call(parent: str = "", call_id: str = "") -> pb.CallRequest:
    request = pb.CallRequest(function="f", context=pb.CallContext(parent_call_id=parent, function_call_id="forged"))
    call_graph.mint(request, call_id)
    return request


def test_mint_replaces_the_callers_ids_and_keeps_its_parent() -> None:
    request = call(parent="fc-parent")
    assert request.context.function_call_id.startswith("fc-") and request.context.function_call_id != "forged"
    assert request.context.input_id.startswith("in-")
    assert request.context.parent_call_id == "fc-parent"
    assert call(call_id="fc-spawned").context.function_call_id == "fc-spawned"


def test_a_spawned_call_roots_a_tree_and_calls_made_inside_join_it() -> None:
    graphs = CallGraphs()
    root_request = call(call_id="fc-root")
    root = graphs.begin(root_request, "parent", "app", spawned=True)
    assert root is not None
    child = graphs.begin(call(parent="fc-root"), "leaf", "app", spawned=False)
    spawned_child = graphs.begin(call(parent="fc-root", call_id="fc-child"), "other", "app", spawned=True)
    assert child is not None and spawned_child is not None
    grandchild = graphs.begin(call(parent=child.function_call_id), "leaf", "app", spawned=False)
    assert grandchild is not None
    # Calls whose parent is in no kept tree are in no tree, unless spawned.
    assert graphs.begin(call(), "leaf", "app", spawned=False) is None
    assert graphs.begin(call(parent="fc-unknown"), "leaf", "app", spawned=False) is None
    graphs.finished(child, pb.INPUT_STATUS_SUCCESS)
    graphs.finished(grandchild, pb.INPUT_STATUS_FAILURE)
    # Every member names the whole tree, from its root.
    for member in ("fc-root", "fc-child", grandchild.function_call_id):
        response = graphs.graph(member)
        assert response is not None
        assert [n.function_name for n in response.inputs] == ["parent", "leaf", "other", "leaf"]
    [tree] = sdk_graph.from_proto(graphs.graph("fc-root") or pb.CallGraphResponse())
    assert tree.function_call_id == "fc-root" and tree.status == sdk_graph.InputStatus.PENDING
    assert [(c.function_name, c.status.name) for c in tree.children] == [("leaf", "SUCCESS"), ("other", "PENDING")]
    assert [g.status.name for g in tree.children[0].children] == ["FAILURE"]
    # A spawned call outside any tree roots its own.
    assert graphs.begin(call(call_id="fc-alone"), "alone", "app", spawned=True) is not None
    assert [n.function_name for n in (graphs.graph("fc-alone") or pb.CallGraphResponse()).inputs] == ["alone"]


def test_a_spawned_call_run_again_is_the_same_input() -> None:
    graphs = CallGraphs()
    first = graphs.begin(call(call_id="fc-1"), "f", "app", spawned=True)
    assert first is not None
    first.task_id = "ct-1"
    graphs.finished(first, pb.INPUT_STATUS_FAILURE)
    retry = call(call_id="fc-1")
    assert graphs.begin(retry, "f", "app", spawned=True) is first
    assert retry.context.input_id == first.input_id  # the container sees the same input
    assert (first.status, first.task_id) == (pb.INPUT_STATUS_PENDING, "")
    assert len((graphs.graph("fc-1") or pb.CallGraphResponse()).inputs) == 1


def test_graphs_are_bounded() -> None:
    graphs = CallGraphs(keep_seconds=3600, max_trees=2, max_nodes=2)
    first = graphs.begin(call(call_id="fc-1"), "f", "app", spawned=True)
    assert first is not None
    assert graphs.begin(call(parent="fc-1"), "f", "app", spawned=False) is not None
    assert graphs.begin(call(parent="fc-1"), "f", "app", spawned=False) is None  # the tree is full
    graphs.begin(call(call_id="fc-2"), "f", "app", spawned=True)
    graphs.begin(call(call_id="fc-3"), "f", "app", spawned=True)  # the oldest tree goes
    assert graphs.graph("fc-1") is None and graphs.graph("fc-2") is not None and graphs.graph("fc-3") is not None
    assert graphs.node("fc-1") is None


def test_a_tree_expires_keep_seconds_after_its_root_finished() -> None:
    graphs = CallGraphs(keep_seconds=0, max_trees=10)
    root = graphs.begin(call(call_id="fc-1"), "f", "app", spawned=True)
    running = graphs.begin(call(call_id="fc-2"), "f", "app", spawned=True)
    assert root is not None and running is not None
    graphs.finished(root, pb.INPUT_STATUS_SUCCESS)
    graphs.begin(call(call_id="fc-3"), "f", "app", spawned=True)
    assert graphs.graph("fc-1") is None
    assert graphs.graph("fc-2") is not None  # its root still runs


@pytest.mark.parametrize(
    ("entry", "module"), [("app.py", "app"), ("pkg/app.py", "pkg.app"), ("pkg/__init__.py", "pkg")]
)
def test_module_names(entry: str, module: str) -> None:
    assert call_graph.module_name(entry) == module


def test_a_status_this_sdk_does_not_know_reads_as_pending() -> None:
    assert sdk_graph.InputStatus(17) is sdk_graph.InputStatus.PENDING


def test_cancel_ends_a_running_spawned_call_and_its_outcome_says_so() -> None:
    async def scenario() -> None:
        calls = SpawnedCalls()
        heard = asyncio.Event()

        async def outcome(call_id: str) -> pb.CallOutput:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                heard.set()
                raise
            return pb.CallOutput()

        async def quick(call_id: str) -> pb.CallOutput:
            return pb.CallOutput(result=call_id.encode())

        running = calls.start(outcome)
        done = calls.start(quick)
        assert (await calls.outcome(done, 5)).result == done.encode()
        await asyncio.sleep(0)
        assert calls.cancel(running) is True
        with pytest.raises(SpawnedCancelled):
            await calls.outcome(running, 5)
        assert heard.is_set()
        assert calls.cancel(done) is False  # it had finished: left as it is
        assert (await calls.outcome(done, 0)).result == done.encode()
        with pytest.raises(KeyError):
            calls.cancel("fc-unknown")

    asyncio.run(scenario())
