"""The ingress daemon: uvicorn serving the proxy, a stream to the scheduler, links to containers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Iterator

import uvicorn

from ingress.auth import ProxyAuth
from ingress.config import IngressConfig
from ingress.container_link import ContainerLinks
from ingress.limits import Limits
from ingress.localhost_names import LocalhostCheck
from ingress.protocol import EdgeWebSocketProtocol, HeadLimits, edge_protocol
from ingress.proxy import Proxy
from ingress.ratelimit import RateLimiter
from ingress.scheduler_link import SchedulerLink

log = logging.getLogger(__name__)

WS_MAX_MESSAGE = 2 * 1024 * 1024  # the seed's WebSocket message limit; past it, close code 1009
WS_PING_INTERVAL = 20.0  # a WebSocket peer that does not answer a ping within WS_PING_TIMEOUT is
WS_PING_TIMEOUT = 20.0  # gone (half-open): its connection is closed


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
        self.localhost_check = LocalhostCheck()

    async def startup(self) -> None:
        c = self.config
        sock = socket.socket(socket.AF_INET6 if ":" in c.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((c.host, c.port))
        except OSError as exc:
            sock.close()
            # One line for the operator, not a traceback: exit status 1.
            raise SystemExit(f"Error: the ingress cannot listen on {c.host}:{c.port}: {exc.strerror or exc}") from None
        sock.listen(2048)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._socket = sock

        self.scheme = "https" if c.tls_cert else "http"
        self.scheduler = SchedulerLink(
            c.scheduler, c.ingress_id, self.port, self.scheme, c.placement_timeout, c.cluster_secret, c.slot_linger
        )
        self.scheduler.start()
        self.links = ContainerLinks()
        auth = ProxyAuth()
        self.scheduler.edge_listeners.append(auth.update)
        limiter = RateLimiter(c.rate_limit_rps)
        self.scheduler.edge_listeners.append(lambda edge: limiter.set_share(edge.ingress_count))
        self.scheduler.route_listeners.append(self.localhost_check.routes)
        self._uvicorn = _Uvicorn(
            uvicorn.Config(
                # Size limits come first: they need no route, and a refused request places nothing.
                Limits(Proxy(self.scheduler, self.links, auth, limiter), c.max_body_bytes, c.max_header_bytes),
                http=edge_protocol(HeadLimits(c.header_timeout, c.max_header_bytes)),  # httptools, defended
                ws=EdgeWebSocketProtocol,  # websockets-sansio
                ws_max_size=WS_MAX_MESSAGE,
                ws_ping_interval=WS_PING_INTERVAL,
                ws_ping_timeout=WS_PING_TIMEOUT,
                lifespan="off",
                access_log=False,
                proxy_headers=False,  # this is the edge: the peer address is the client's
                server_header=False,
                log_config=None,
                timeout_graceful_shutdown=5,
                ssl_certfile=c.tls_cert,
                ssl_keyfile=c.tls_key,
            )
        )
        self._serving = asyncio.create_task(self._serve(), name="uvicorn")
        if c.port_file is not None:
            c.port_file.write_text(json.dumps({"http": self.port}))
        log.info("ingress listening on %s://%s:%d (scheduler %s)", self.scheme, c.host, self.port, c.scheduler)

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
        await self.localhost_check.close()
        log.info("ingress stopped")
