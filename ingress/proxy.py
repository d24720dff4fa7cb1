"""The ingress's ASGI app: route by Host, get a slot from the scheduler, relay to the container."""

from __future__ import annotations

import logging
from typing import Any

from ingress.container_link import ContainerLinks
from ingress.responses import plain_response
from ingress.scheduler_link import Rejected, SchedulerLink

log = logging.getLogger(__name__)


def _host(scope: dict[str, Any]) -> str:
    for name, value in scope["headers"]:
        if name == b"host":
            return str(value.decode("latin-1"))
    return ""


class Proxy:
    def __init__(self, scheduler: SchedulerLink, links: ContainerLinks) -> None:
        self.scheduler = scheduler
        self.links = links

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return
        host = _host(scope)
        route = self.scheduler.routes.match(host)
        if route is None:
            await plain_response(
                scope,
                send,
                404,
                (
                    f"No web endpoint is named {host.rsplit(':', 1)[0]!r} on this cluster. "
                    "Use a URL that `stoker deploy` or `stoker serve` printed; `stoker app list` shows them."
                )
                if host
                else "The request has no Host header, so it names no web endpoint.",
            )
            return
        try:
            request_id, assignment = await self.scheduler.acquire(route.function_id)
        except Rejected as exc:
            await plain_response(scope, send, exc.status, exc.message)
            return
        try:
            await self.links.get(assignment.address).proxy(request_id, scope, receive, send)
        finally:
            self.scheduler.release(request_id)
