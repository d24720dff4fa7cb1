"""The event loop stoker's processes run on: the daemons (client/cli/daemon.py) and the
containers (worker/runtime/container.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_on_fastest_loop(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, on uvloop where it is installed: every hop of the request path (the daemons
    and the containers) spends a good part of its CPU in the event loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    from client.localhost import install_on_uvloop

    install_on_uvloop()  # `*.localhost` names resolve on this loop too (client/localhost.py)
    return uvloop.run(main)
