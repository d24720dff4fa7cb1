"""Call graphs of spawned calls (FunctionCall.get_call_graph): per tree, each input's function call
id, function, module, container and status.

A call whose CallContext names, as its parent, a function call of a kept tree joins that tree;
any other spawned call is the root of a tree of its own. Other calls (a `.remote()` from outside, a web request's
calls) are in no tree. Every call gets its ids (`mint`) either way: the container running it
tells its own calls their parent with them.

Bounded, like the outcomes of spawned calls (scheduler/spawned.py): a tree is kept for
KEEP_SECONDS after its root finished, at most MAX_TREES trees are held (the oldest go first), and
a tree records at most MAX_NODES inputs (later ones are left out: best-effort, as on Modal).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from protos import stoker_pb2 as pb

KEEP_SECONDS = 3600.0
MAX_TREES = 10_000
MAX_NODES = 1_000

PENDING = pb.INPUT_STATUS_PENDING


def mint(request: pb.CallRequest, call_id: str = "") -> None:
    """Give the call its function call id (`call_id`, a spawned call's, or a new one) and input
    id, in its CallContext, replacing whatever the caller put there."""
    request.context.function_call_id = call_id or f"fc-{uuid.uuid4().hex}"
    request.context.input_id = f"in-{uuid.uuid4().hex}"


def module_name(entry: str) -> str:
    """The module an app file is imported as in its containers (`pkg/app.py`: `pkg.app`)."""
    module = entry.removesuffix(".py").replace("/", ".")
    return module.removesuffix(".__init__")


@dataclass(eq=False)
class Node:
    """One input of a tree, as the scheduler saw it."""

    input_id: str
    function_call_id: str
    parent_call_id: str
    function_name: str
    module_name: str
    task_id: str = ""
    status: pb.InputStatus.ValueType = PENDING

    def to_proto(self) -> pb.CallGraphInput:
        return pb.CallGraphInput(
            input_id=self.input_id,
            function_call_id=self.function_call_id,
            parent_call_id=self.parent_call_id,
            task_id=self.task_id,
            status=self.status,
            function_name=self.function_name,
            module_name=self.module_name,
        )


@dataclass(eq=False)
class _Tree:
    root: Node
    nodes: list[Node] = field(default_factory=list)  # parents before their children
    finished_at: float = 0.0  # when the root finished; 0: it runs


class CallGraphs:
    def __init__(self, keep_seconds: float = KEEP_SECONDS, max_trees: int = MAX_TREES, max_nodes: int = MAX_NODES):
        self.keep_seconds = keep_seconds
        self.max_trees = max_trees
        self.max_nodes = max_nodes
        self._trees: dict[str, _Tree] = {}  # by root call id, oldest first
        self._kept: dict[str, tuple[_Tree, Node]] = {}  # every kept function call id -> its tree and node

    def begin(self, request: pb.CallRequest, function_name: str, module: str, spawned: bool) -> Node | None:
        """Record the call (its ids minted already) in its parent's tree when that is kept, else
        as the root of a tree of its own when it was `spawned`; its node then, for `finished`.
        None when it is in no tree (or its tree is full)."""
        context = request.context
        again = self._kept.get(context.function_call_id)
        if again is not None:  # a spawned call run once more (a retry): still its one input
            node = again[1]
            node.status, node.task_id = PENDING, ""
            context.input_id = node.input_id
            return node
        parent = self._kept.get(context.parent_call_id) if context.parent_call_id else None
        if parent is None and not spawned:
            return None
        tree = parent[0] if parent is not None else None
        if tree is not None and len(tree.nodes) >= self.max_nodes:
            return None
        parent_call_id = context.parent_call_id if tree is not None else ""
        node = Node(context.input_id, context.function_call_id, parent_call_id, function_name, module)
        if tree is None:
            self._evict(time.monotonic())
            tree = self._trees[node.function_call_id] = _Tree(node)
        tree.nodes.append(node)
        self._kept[node.function_call_id] = (tree, node)
        return node

    def finished(self, node: Node, status: pb.InputStatus.ValueType) -> None:
        node.status = status
        kept = self._kept.get(node.function_call_id)
        if kept is not None and kept[0].root is node:
            kept[0].finished_at = time.monotonic()

    def graph(self, call_id: str) -> pb.CallGraphResponse | None:
        """The whole tree `call_id` is part of, from its root; None when no kept tree has it."""
        kept = self._kept.get(call_id)
        if kept is None:
            return None
        return pb.CallGraphResponse(inputs=[node.to_proto() for node in kept[0].nodes])

    def node(self, call_id: str) -> Node | None:
        kept = self._kept.get(call_id)
        return kept[1] if kept is not None else None

    def _evict(self, now: float) -> None:
        """Make room for one more tree: drop those whose root finished over keep_seconds ago, then
        the oldest, running or not, while there are max_trees."""
        for root_id, tree in list(self._trees.items()):
            expired = tree.finished_at and now - tree.finished_at >= self.keep_seconds
            if expired or len(self._trees) >= self.max_trees:
                self._drop(root_id, tree)

    def _drop(self, root_id: str, tree: _Tree) -> None:
        del self._trees[root_id]
        for node in tree.nodes:
            self._kept.pop(node.function_call_id, None)
