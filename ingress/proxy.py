"""The ingress's ASGI app: route by Host, get a slot from the scheduler, relay to the container."""

from __future__ import annotations

import logging
import math
from typing import Any

from ingress.auth import ProxyAuth, strip_credentials
from ingress.container_link import ContainerLinks, ContainerUnreachable
from ingress.ratelimit import RateLimiter
from ingress.scheduler_link import Rejected, SchedulerLink
from protos.asgi import plain_response

log = logging.getLogger(__name__)


PLACEMENT_ATTEMPTS = 3


class _Slot:
    """A container slot the scheduler gave one request, released exactly once."""

    __slots__ = ("released", "request_id", "scheduler")

    def __init__(self, scheduler: SchedulerLink, request_id: int) -> None:
        self.scheduler = scheduler
        self.request_id = request_id
        self.released = False

    def release(self, unreachable: bool = False) -> None:
        if not self.released:
            self.released = True
            self.scheduler.release(self.request_id, unreachable)


def _replaying(consumed: list[dict[str, Any]], receive: Any) -> Any:
    """A receive() that first gives back what an unreachable container's attempt already read."""
    pending = list(consumed)

    async def replay() -> Any:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _host(scope: dict[str, Any]) -> str:
    for name, value in scope["headers"]:
        if name == b"host":
            return str(value.decode("latin-1"))
    return ""


class Proxy:
    def __init__(self, scheduler: SchedulerLink, links: ContainerLinks, auth: ProxyAuth, limiter: RateLimiter) -> None:
        self.scheduler = scheduler
        self.links = links
        self.auth = auth
        self.limiter = limiter

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
        if route.requires_proxy_auth:
            refused, bearer = self.auth.check(scope["headers"])
            if refused is not None:
                await plain_response(scope, send, 401, refused)
                return
            scope["headers"] = strip_credentials(scope["headers"], bearer)
        wait = self.limiter.check(route.workspace)
        if wait:
            await self._too_many(scope, send, wait)
            return
        for attempt in range(PLACEMENT_ATTEMPTS):
            try:
                request_id, assignment = await self.scheduler.acquire(route.function_id)
            except Rejected as exc:
                await plain_response(scope, send, exc.status, exc.message)
                return
            slot = _Slot(self.scheduler, request_id)
            try:
                await self.links.get(assignment.address).proxy(request_id, scope, receive, send, slot.release)
            except ContainerUnreachable as exc:
                # Nothing reached the app: tell the scheduler, and try another container.
                slot.release(unreachable=True)
                receive = _replaying(exc.consumed, receive)
                log.warning("container at %s unreachable (attempt %d)", assignment.address, attempt + 1)
                continue
            finally:
                slot.release()
            return
        await plain_response(scope, send, 502, "no container of this endpoint could be reached; retry")

    async def _too_many(self, scope: dict[str, Any], send: Any, wait: float) -> None:
        retry_after = max(1, math.ceil(wait))
        message = (
            f"Rate limit exceeded: this workspace may make {self.limiter.describe()}. "
            f"Retry after {retry_after} s, or send fewer requests per second."
        )
        await plain_response(scope, send, 429, message, [(b"retry-after", str(retry_after).encode())])
