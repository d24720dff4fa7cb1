"""The ingress daemon: uvicorn serving the proxy, a stream to the scheduler, links to containers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Iterator

import uvicorn

from ingress.config import IngressConfig
from ingress.container_link import ContainerLinks
from ingress.proxy import Proxy
from ingress.scheduler_link import SchedulerLink

log = logging.getLogger(__name__)

WS_MAX_MESSAGE = 2 * 1024 * 1024  # the seed's WebSocket message limit


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon's lifecycle owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class IngressServer:
    def __init__(self, config: IngressConfig) -> None:
        self.config = config
        self.stopped = asyncio.Event()
        self.port = 0
        self._serving: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        c = self.config
        sock = socket.socket(socket.AF_INET6 if ":" in c.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((c.host, c.port))
        sock.listen(2048)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._socket = sock

        self.scheduler = SchedulerLink(c.scheduler, c.ingress_id, self.port, c.placement_timeout)
        self.scheduler.start()
        self.links = ContainerLinks()
        self._uvicorn = _Uvicorn(
            uvicorn.Config(
                Proxy(self.scheduler, self.links),
                http="httptools",
                ws="websockets-sansio",
                ws_max_size=WS_MAX_MESSAGE,
                lifespan="off",
                access_log=False,
                proxy_headers=False,  # this is the edge: the peer address is the client's
                server_header=False,
                log_config=None,
                timeout_graceful_shutdown=5,
            )
        )
        self._serving = asyncio.create_task(self._serve(), name="uvicorn")
        if c.port_file is not None:
            c.port_file.write_text(json.dumps({"http": self.port}))
        log.info("ingress listening on http://%s:%d (scheduler %s)", c.host, self.port, c.scheduler)

    async def _serve(self) -> None:
        try:
            await self._uvicorn.serve(sockets=[self._socket])
        finally:
            self.stopped.set()

    async def shutdown(self) -> None:
        self._uvicorn.should_exit = True
        if self._serving is not None:
            await asyncio.gather(self._serving, return_exceptions=True)
        await self.links.close()
        await self.scheduler.close()
        log.info("ingress stopped")
