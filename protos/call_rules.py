"""Modal's rules for calling a function, as both ends of the Call RPC enforce them.

The scheduler refuses calls to web functions and calls of the wrong kind (it has the functions'
specs: their URLs, and whether they yield) before placing them; the container checks the kind
again, as the one that runs the code. The messages live here once, so the two ends say the same.
"""

from __future__ import annotations

from collections.abc import Mapping

from protos import stoker_pb2 as pb

NO_SUCH_METHOD = "no such method: "


def web_function_refusal(name: str, url: str) -> str:
    """Why a web function cannot be called with .remote(), .remote_gen(), .map() or .spawn()."""
    return (
        f"{name} is a web function and cannot be called with .remote(), .map() or .spawn(); "
        f"send HTTP requests to its URL instead: {url or '(no URL known here)'}"
    )


def call_kind_refusal(name: str, is_generator: bool, wants_generator: bool) -> str | None:
    """Why a call of this kind does not fit the function (a generator is called with
    .remote_gen(), any other function with .remote()); None when it fits."""
    if is_generator and not wants_generator:
        return f"{name} is a generator function: call it with .remote_gen(), not .remote()"
    if wants_generator and not is_generator:
        return f"{name} is not a generator function: call it with .remote(), not .remote_gen()"
    return None


def spawned_generator_refusal(name: str) -> str:
    return f"{name} is a generator function, and generator functions cannot be spawned; use .remote_gen()"


def is_generator(spec: pb.FunctionSpec, method_name: str) -> bool:
    """Whether the function, or the class's method, yields."""
    if not method_name:
        return spec.is_generator
    return any(m.name == method_name and m.is_generator for m in spec.methods)


def refusal(spec: pb.FunctionSpec, method_name: str, wants_generator: bool, urls: Mapping[str, str]) -> str | None:
    """Why this call cannot go to the function (or the class's method), as the scheduler sees it
    from the spec; None when it may. `urls`: the web URLs by method name ("" for a function's)."""
    if not spec.methods:
        if method_name:
            return f"{NO_SUCH_METHOD}{spec.name} is a function, not a class: it has no method {method_name!r}"
        if spec.HasField("web"):
            return web_function_refusal(spec.name, urls.get("", ""))
        return call_kind_refusal(spec.name, spec.is_generator, wants_generator)
    methods = {m.name: m for m in spec.methods}
    method = methods.get(method_name)
    if method is None:
        known = ", ".join(sorted(methods))
        if not method_name:
            return f"{spec.name} is a class: call one of its methods ({known}), as {spec.name}().method.remote()"
        return f"{NO_SUCH_METHOD}class {spec.name} has no method {method_name!r} (it has: {known})"
    name = f"{spec.name}.{method_name}"
    if method.HasField("web"):
        return web_function_refusal(name, urls.get(method_name, ""))
    return call_kind_refusal(name, method.is_generator, wants_generator)


def batch_size(spec: pb.FunctionSpec) -> int:
    """The largest batch the function (or one of the class's methods) takes; 0: none is batched."""
    return max([spec.batch_max_size, *(m.batch_max_size for m in spec.methods)])
