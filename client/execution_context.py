"""Which input the code is running, inside a container: Modal's `current_function_call_id()` and
`current_input_id()`, and the parent that calls made from there carry (their call graph).

The container runtime sets it for each input it runs (worker/runtime/exchange.py; a batch runs
under its first input's ids). A context variable: it follows the input into the threads that
asyncio.to_thread starts and into `.aio` forms, and each concurrent input sees its own.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(frozen=True)
class InputIds:
    function_call_id: str
    input_id: str


_current: ContextVar[InputIds | None] = ContextVar("stoker_current_input", default=None)


def current_function_call_id() -> str | None:
    """The function call id of the input this code runs for, inside a container; None elsewhere
    (and in web requests, which are no function calls here)."""
    ids = _current.get()
    return ids.function_call_id if ids is not None else None


def current_input_id() -> str | None:
    """The id of the input this code runs for, inside a container; None elsewhere."""
    ids = _current.get()
    return ids.input_id if ids is not None else None


def enter_input(function_call_id: str, input_id: str) -> Token[InputIds | None]:
    """Mark the current context as running this input (the container runtime's)."""
    return _current.set(InputIds(function_call_id, input_id) if function_call_id else None)
