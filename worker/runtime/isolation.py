"""The container runtime's own gRPC and protobuf, kept apart from the app's.

A container runs stoker's runtime and the app in one interpreter. The runtime needs its own
`grpc`, `google.protobuf` and the modules generated from protos/stoker.proto; an app's image may
pin other versions of the same packages (streamlit 1.35 pins protobuf 4.25, whose
`google.protobuf` lacks the `runtime_version` stoker_pb2 imports). Both cannot be in
`sys.modules` under one name, so the runtime imports its copies first and then steps aside:

1. The worker names the runtime's *private* paths (cenv.RUNTIME_PATH: stoker's source and the
   site-packages holding its requirements for the image's Python) and its *shared fallback*
   paths (cenv.RUNTIME_FALLBACK_PATH), appended to `sys.path` after the image's own. Only lists
   of directories: a venv, or a root filesystem with the runtime mounted inside, look the same.
2. `isolate()`, before the app is imported, puts a finder first on `sys.meta_path` that resolves
   the runtime's own top-level names (ROUTED) from the private paths, and imports the runtime:
   the SDK (`client`, which the app gets as `modal`), every module of worker/runtime, gRPC and
   protobuf with their submodules (PRELOADED), so that none is first imported later, in each
   container after the fork (point 4 would load it from the private paths, but once per
   container) or under a name the app's package holds by then. Everything else those modules import (FastAPI,
   Starlette, pydantic, a2wsgi, cloudpickle, uvicorn: the packages the app and the runtime share
   by design) is found on the ordinary `sys.path`: the image's copy when it has one, else the
   fallback.
3. Then the finder goes, and the private groups (GROUPS) the app's own paths also provide leave
   `sys.modules` (stoker's generated `protos` always does): the app's `import google.protobuf`
   finds its own version, while stoker's modules keep the module objects they already hold. A
   group the app lacks stays, so such an app's `import grpc` shares the runtime's one copy (as
   the fallback would give it) instead of loading a second copy of the same extension modules.
4. Module objects alone are not enough: gRPC and protobuf import lazily *by name* inside their
   functions (`insecure_channel` runs `from grpc import _channel`), which would find the app's
   `grpc` in sys.modules. So `builtins.__import__` becomes `_import`, which gives an import
   statement run in a hidden module's or a stoker module's namespace the runtime's module of
   that name (loading one it never imported from the private paths, into `hidden`), and passes
   every other import to Python's own (about 0.6 us more per import statement run).

`google` is a namespace package: a hidden protobuf takes `google` itself along, so the app's
`import google.x` builds the namespace again from its own `sys.path`. What C code imports while
called from Python (upb's `google.protobuf.descriptor_pb2`) goes through `__import__` with the
calling frame's globals, so it follows the same rule. Cython's function-level imports would not
(they skip `__import__`), but gRPC's Cython module binds `grpc` at its own import, before hiding.

The SDK (`client`) and the runtime (`worker`) stay in `sys.modules`: the app holds the SDK as
`modal`, and their modules import one another lazily (so an app's own top-level `client` or
`worker` package still collides with them). A fork template isolates once, before it forks; its
containers inherit the result. Without cenv.RUNTIME_PATH (the worker's own environment, where
the app's packages are the worker's) `isolate()` does nothing.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import pkgutil
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType

from protos import container_env as cenv

# Top-level names the runtime imports from its private paths, never from the image.
ROUTED = frozenset(
    {"grpc", "grpc_tools", "grpc_status", "grpc_health", "grpc_reflection", "grpc_channelz", "google"}
    | {"client", "protos", "worker"}
)

# Packages whose every submodule is imported up front, so none is imported lazily later (gRPC's
# `_channel`, `_server`, `experimental`; protobuf's `json_format`, `descriptor_pb2`,
# `symbol_database`, its well-known types...). Submodules named by SKIPPED are never used at run
# time (benchmarks and test helpers, which pull in unittest; protoc's plugin interface and the C++
# backend; gRPC's legacy APIs; stoker's CLI and its code generator).
PRELOADED = ("client", "worker.runtime", "grpc", "google.protobuf", "protos")
SKIPPED = (
    *("benchmark", "_test", "testing", "testdata", "google.protobuf.compiler", ".pyext"),
    *("grpc.beta", "grpc.framework", "client.cli", "protos.generate"),
)


@dataclass(frozen=True)
class Group:
    """Private modules that leave sys.modules together: those named `roots` or under them; when
    the app's own paths provide `probe` (always, when it is empty)."""

    roots: tuple[str, ...]
    probe: str

    def holds(self, name: str) -> bool:
        return any(name == root or name.startswith(root + ".") for root in self.roots)


GROUPS = (
    Group(("grpc", "grpc_tools", "grpc_status", "grpc_health", "grpc_reflection", "grpc_channelz"), "grpc"),
    Group(("google",), "google.protobuf"),
    Group(("protos",), ""),  # stoker's generated code: an app's own `protos` package must be found
)

hidden: dict[str, ModuleType] = {}  # what left sys.modules, by name (stoker's modules hold them)
_hidden_tops: set[str] = set()  # their top-level names
_private_namespaces: set[int] = set()  # id() of the globals of the hidden modules and of stoker's own
_private_paths: list[str] = []
_isolated = False
_loading = threading.RLock()  # a runtime module imported for the first time after isolate()


class PrivateFinder(importlib.abc.MetaPathFinder):
    """Finds the ROUTED top-level names on the private paths (their submodules follow from the
    package's own __path__)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if path is not None or fullname not in ROUTED:
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, self.paths)


def paths_from(variable: str) -> list[str]:
    return [p for p in os.environ.get(variable, "").split(os.pathsep) if p]


def isolate() -> None:
    """Import the runtime from its private paths, then hide what the app brings its own of
    (see the module's docstring). Idempotent."""
    global _isolated
    private = paths_from(cenv.RUNTIME_PATH)
    if not private or _isolated:
        return
    _isolated = True
    fallback = paths_from(cenv.RUNTIME_FALLBACK_PATH)
    sys.path.extend(p for p in fallback if p not in sys.path)
    with _routed(private):
        for name in PRELOADED:
            _import_all(name)
    apps_own = [p for p in sys.path if p not in private and p not in fallback and p != ""]
    for group in GROUPS:
        if not group.probe or provides(apps_own, group.probe):
            _hide(group)
    _private_paths[:] = private
    _private_namespaces.update(id(vars(m)) for m in hidden.values())
    _private_namespaces.update(
        id(vars(m)) for n, m in list(sys.modules.items()) if n.partition(".")[0] in ("client", "worker")
    )
    builtins.__import__ = _import
    # The private paths serve no later import: an app's `import grpc` must not find them first.
    sys.path[:] = [p for p in sys.path if p not in private or p in fallback]
    importlib.invalidate_caches()


@contextlib.contextmanager
def _routed(private: Sequence[str]) -> Iterator[None]:
    finder = PrivateFinder(private)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def _import_all(name: str) -> None:
    """Import the package `name` and its submodules, never descending into a SKIPPED one
    (pkgutil.walk_packages would import those packages to look inside them)."""
    package = importlib.import_module(name)
    for module in pkgutil.iter_modules(getattr(package, "__path__", []), name + "."):
        if any(part in module.name for part in SKIPPED) or module.name.endswith(".__main__"):
            continue
        # An optional part whose own dependency is missing (gRPC's gevent support) is never used.
        with contextlib.suppress(ImportError):
            if module.ispkg:
                _import_all(module.name)
            else:
                importlib.import_module(module.name)


def provides(paths: Sequence[str], dotted: str) -> bool:
    """Whether a module `dotted` ("grpc", "google.protobuf") is importable from `paths` alone."""
    search = list(paths)
    name = ""
    for part in dotted.split("."):
        name = f"{name}.{part}" if name else part
        spec = importlib.machinery.PathFinder.find_spec(name, search)
        if spec is None:
            return False
        search = list(spec.submodule_search_locations or [])
    return True


def _hide(group: Group) -> None:
    for name in [n for n in sys.modules if group.holds(n)]:
        hidden[name] = sys.modules.pop(name)
        _hidden_tops.add(name.partition(".")[0])


# ---------------------------------------------------------------- imports at run time

_original_import = builtins.__import__


def _import(
    name: str,
    globals: Mapping[str, object] | None = None,
    locals: Mapping[str, object] | None = None,
    fromlist: Sequence[str] | None = (),
    level: int = 0,
) -> ModuleType:
    """`__import__` for the whole process: an import statement run by a hidden module or by
    stoker's own (gRPC's `from grpc import _channel` inside `insecure_channel`, protobuf's
    `from google.protobuf import descriptor_pb2`, also what their C code imports while called
    from them) gets the runtime's module, not the app's one of the same name; every other import
    is Python's own."""
    if globals is not None and id(globals) in _private_namespaces:
        absolute = name
        if level > 0:
            package = str(globals.get("__package__") or "")
            absolute = importlib.util.resolve_name("." * level + name, package)
        if absolute.partition(".")[0] in _hidden_tops:
            return _private_import(absolute, fromlist or (), level)
    return _original_import(name, globals, locals, fromlist or (), level)


def _private_import(name: str, fromlist: Sequence[str], level: int) -> ModuleType:
    module = _private_module(name)
    if not fromlist:
        return hidden[name.partition(".")[0]] if level == 0 else module
    for item in fromlist:
        if item != "*" and not hasattr(module, item) and hasattr(module, "__path__"):
            with contextlib.suppress(ModuleNotFoundError):
                _private_module(f"{name}.{item}")
    return module


def _private_module(name: str) -> ModuleType:
    """The runtime's module `name`; one it never imported before is loaded now, from its
    parent's private path, into `hidden` (never sys.modules)."""
    module = hidden.get(name)
    if module is not None:
        return module
    with _loading:
        return hidden.get(name) or _load_private(name)


def _load_private(name: str) -> ModuleType:
    parent_name, _, child = name.rpartition(".")
    parent = _private_module(parent_name) if parent_name else None
    search = list(getattr(parent, "__path__", ())) if parent is not None else _private_paths
    spec = importlib.machinery.PathFinder.find_spec(name, search)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r} in the container runtime's paths", name=name)
    module = importlib.util.module_from_spec(spec)
    hidden[name] = module
    _private_namespaces.add(id(vars(module)))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del hidden[name]
        raise
    if parent is not None:
        setattr(parent, child, module)
    return module
