"""How `stoker scheduler`, `worker` and `ingress` run their daemon: capture signals, startup(),
wait, shutdown(), on the event loop of client/event_loop.py (which containers run on too).

A second SIGINT or SIGTERM during shutdown forces an immediate exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Protocol

from client.event_loop import run_on_fastest_loop


class Daemon(Protocol):
    stopped: asyncio.Event

    async def startup(self) -> None: ...
    async def shutdown(self) -> None: ...


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


async def _run(daemon: Daemon) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            os._exit(1)  # the second signal: do not wait for a clean shutdown
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    await daemon.startup()
    stopped = asyncio.create_task(daemon.stopped.wait())
    requested = asyncio.create_task(stop.wait())
    await asyncio.wait({stopped, requested}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    requested.cancel()
    await daemon.shutdown()


def run(daemon: Daemon) -> None:
    run_on_fastest_loop(_run(daemon))
