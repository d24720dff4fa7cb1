"""`FunctionCall.get_call_graph()`'s answer, in Modal's shape (`modal.call_graph`): the inputs
of a spawned call's tree, each with the inputs of the calls made while it ran as its children."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from protos import stoker_pb2 as pb


class InputStatus(enum.IntEnum):
    """Where an input stands (Modal's numbers)."""

    PENDING = 0
    SUCCESS = 1
    FAILURE = 2
    TERMINATED = 3
    TIMEOUT = 4
    INIT_FAILURE = 5

    @classmethod
    def _missing_(cls, value: object) -> InputStatus:
        return cls.PENDING  # a status a newer scheduler knows and this SDK does not


@dataclass
class InputInfo:
    """One input of a call graph: its ids, the container (`task_id`) that ran it, its status,
    the function it called, and the inputs of the calls it made."""

    input_id: str
    function_call_id: str
    task_id: str
    status: InputStatus
    function_name: str
    module_name: str
    children: list[InputInfo] = field(default_factory=list)


def from_proto(response: pb.CallGraphResponse) -> list[InputInfo]:
    """The roots of the graph (one for a spawned call's tree), children in the order they began."""
    by_call: dict[str, InputInfo] = {}
    roots: list[InputInfo] = []
    for node in response.inputs:  # parents come before their children
        info = InputInfo(
            input_id=node.input_id,
            function_call_id=node.function_call_id,
            task_id=node.task_id,
            status=InputStatus(node.status),
            function_name=node.function_name,
            module_name=node.module_name,
        )
        by_call[node.function_call_id] = info
        parent = by_call.get(node.parent_call_id) if node.parent_call_id else None
        (parent.children if parent is not None else roots).append(info)
    return roots
