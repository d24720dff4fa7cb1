"""The seams of the tree (README, "How it works"): which package may import which.

protos/ is the wire and imports none of the others; no daemon imports another daemon; the SDK
(the top of client/) imports no daemon; only the CLI (client/cli/) starts the daemons, and only
the container runtime (worker/runtime/) of the daemons imports the SDK.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("client", "ingress", "scheduler", "worker", "protos")
DAEMONS = frozenset({"ingress", "scheduler", "worker"})


def _imported_packages(path: Path) -> set[str]:
    """The top-level packages of ours that `path` imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


def _allowed(relative: Path) -> set[str]:
    package = relative.parts[0]
    if package == "protos":
        return {"protos"}
    if package == "client":
        return {"client", "protos", *DAEMONS} if relative.parts[1] == "cli" else {"client", "protos"}
    if relative.parts[:2] == ("worker", "runtime"):
        return {"worker", "client", "protos"}
    return {package, "protos"}


SOURCES = sorted(p.relative_to(ROOT) for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("relative", SOURCES, ids=str)
def test_each_module_imports_only_what_its_room_may(relative: Path) -> None:
    imported = _imported_packages(ROOT / relative)
    assert imported <= _allowed(relative), f"{relative} imports {sorted(imported - _allowed(relative))}"


def test_every_package_is_a_regular_package() -> None:
    folders = {p.parent for p in SOURCES}
    assert [str(f) for f in sorted(folders) if not (ROOT / f / "__init__.py").exists()] == []
