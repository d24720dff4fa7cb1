"""`@modal.batched(max_batch_size, wait_ms)`: a function (or the one method of a class) that takes
a list per parameter and returns a list of results, one per input. Callers call it with single
inputs; its container collects them into batches (worker/runtime/batching.py).

Modal's rules, checked when the app file is imported (so `deploy` and `serve` fail with them):
max_batch_size 1..1000, wait_ms 0..600000, no generators, no default arguments, no web
decorator, no `@modal.concurrent`, and a class with a batched method has no other methods.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from client.exceptions import InvalidError

if TYPE_CHECKING:
    from client.partial import PartialFunction

MAX_BATCH_SIZE = 1000
MAX_WAIT_MS = 10 * 60 * 1000  # ten minutes


@dataclass(frozen=True)
class BatchConfig:
    max_batch_size: int
    wait_ms: int


def batched(
    _warn_parentheses_missing: Any = None, *, max_batch_size: int, wait_ms: int
) -> Callable[[Any], PartialFunction]:
    """Call the function with batches of inputs: up to `max_batch_size` of them, collected for at
    most `wait_ms` after the first arrives. It takes a list per parameter and returns a list with
    one result per input, in their order; each caller gets its own. An exception fails every
    input of the batch."""
    from client.partial import merge  # client.partial imports this module's BatchConfig

    if _warn_parentheses_missing is not None:
        raise InvalidError(
            "Positional arguments are not allowed. Did you forget parentheses? Suggestion: `@modal.batched()`."
        )
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
        raise InvalidError("max_batch_size must be a positive integer.")
    if max_batch_size > MAX_BATCH_SIZE:
        raise InvalidError(f"max_batch_size cannot be greater than {MAX_BATCH_SIZE}.")
    if isinstance(wait_ms, bool) or not isinstance(wait_ms, int) or wait_ms < 0:
        raise InvalidError("wait_ms must be a non-negative integer.")
    if wait_ms > MAX_WAIT_MS:
        raise InvalidError(f"wait_ms cannot be greater than {MAX_WAIT_MS} (ten minutes).")
    config = BatchConfig(max_batch_size, wait_ms)

    def wrap(f: Any) -> PartialFunction:
        if isinstance(f, type):
            raise InvalidError("Cannot apply `@modal.batched` to a class. Hint: consider applying to a method instead.")
        if not callable(f):
            raise InvalidError("The object wrapped by `@modal.batched` must be callable.")
        return merge(f, "batched", batch=config)

    return wrap


def check(partial: PartialFunction) -> None:
    """Modal's rules for what may be batched, on a function with `@modal.batched` and whatever
    other decorators it has so far (client/partial.py calls it after each one)."""
    if partial.batch is None:
        return
    name = getattr(partial.raw_f, "__name__", repr(partial.raw_f))
    if partial.web is not None:
        raise InvalidError(
            f"Callable decorators cannot be combined with web interface decorators: `{name}` has "
            f"@modal.batched and @modal.{partial.web.kind}; a web endpoint takes one request at a time."
        )
    if partial.max_inputs is not None:
        raise InvalidError(
            f"@modal.batched cannot be combined with @modal.concurrent (on `{name}`): a batched "
            "function's container takes max_batch_size inputs at once already, and calls the function "
            "once per batch. Remove @modal.concurrent."
        )
    if inspect.isgeneratorfunction(partial.raw_f) or inspect.isasyncgenfunction(partial.raw_f):
        raise InvalidError(f"Modal batched function {name} cannot return generators")
    for parameter in inspect.signature(partial.raw_f).parameters.values():
        if parameter.default is not inspect.Parameter.empty:
            raise InvalidError(f"Modal batched function {name} does not accept default arguments.")
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise InvalidError(
                f"Modal batched function {name} takes a list per named parameter; "
                f"*{parameter.name} cannot be batched: name each parameter."
            )


def check_class(cls_name: str, batched_methods: Mapping[str, BatchConfig], methods: int, max_inputs: int) -> None:
    """Modal's rules for a class with a batched method: one, alone, and no @modal.concurrent."""
    if not batched_methods:
        return
    if len(batched_methods) > 1:
        raise InvalidError(f"Modal class {cls_name} can only have one batched function.")
    if methods > 1:
        raise InvalidError(f"Modal class {cls_name} with a modal batched function cannot have other modal methods.")
    if max_inputs > 1:
        raise InvalidError(
            f"@modal.batched cannot be combined with @modal.concurrent (class {cls_name}): a batched "
            "method's container takes max_batch_size inputs at once already. Remove @modal.concurrent."
        )
