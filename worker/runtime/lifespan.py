"""Run an ASGI app's lifespan protocol, so FastAPI/Starlette startup and shutdown hooks run."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from worker.runtime.web import ASGIApp, Message

log = logging.getLogger(__name__)


class Lifespan:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._supported = True

    async def startup(self) -> None:
        self._task = asyncio.create_task(self._main(), name="lifespan")
        await self._inbox.put({"type": "lifespan.startup"})
        reply = await self._outbox.get()
        if reply["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"the app's startup failed: {reply.get('message', '')}")

    async def shutdown(self) -> None:
        if self._task is None or not self._supported or self._task.done():
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(self._outbox.get(), timeout=10)
        except TimeoutError:
            log.warning("the app's shutdown did not finish within 10 s")

    async def _main(self) -> None:
        scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        try:
            await self.app(scope, self._inbox.get, self._outbox.put)
        except Exception:
            # Apps without lifespan support raise on the unknown scope type: that is allowed.
            self._supported = False
            log.debug("the app does not support the lifespan protocol", exc_info=True)
        finally:
            if self._outbox.empty():
                self._outbox.put_nowait({"type": "lifespan.startup.complete"})
