"""Modal's rules for calling a function, as both ends of the Call RPC enforce them.

The scheduler refuses calls to web functions and calls of the wrong kind (it has the functions'
specs: their URLs, and whether they yield) before placing them; the container checks the kind
again, as the one that runs the code. The messages live here once, so the two ends say the same.
"""

from __future__ import annotations


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
