"""The ingress's ASGI app: route by Host, get a container slot (held, or from the scheduler), relay."""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any

from ingress.auth import ProxyAuth, strip_credentials
from ingress.container_link import ContainerLinks, ContainerUnreachable
from ingress.held_slots import Slot
from ingress.ratelimit import RateLimiter
from ingress.scheduler_link import Rejected, SchedulerLink
from protos.asgi import plain_response

log = logging.getLogger(__name__)


PLACEMENT_ATTEMPTS = 3


class _SlotUse:
    """One request's use of a slot, finished exactly once: when its response's last chunk goes
    out, or when it ends otherwise. A held slot outlives the request, so the once is the use's,
    not the slot's: a late finish must not hand away the slot its next request now runs on."""

    __slots__ = ("finished", "retire", "scheduler", "slot")

    def __init__(self, scheduler: SchedulerLink, slot: Slot) -> None:
        self.scheduler = scheduler
        self.slot = slot
        self.finished = False
        self.retire = False  # the container said it takes no new inputs

    def retiring(self) -> None:
        self.retire = True

    def finish(self, unreachable: bool = False) -> None:
        if not self.finished:
            self.finished = True
            self.scheduler.finish(self.slot, unreachable, self.retire)


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
        # Exchange stream ids: one per request, apart from the scheduler's slot ids, which a held
        # slot keeps across requests while the container may still be closing the last one.
        self._stream_ids = itertools.count(1)

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
                slot = await self.scheduler.acquire(route.function_id)
            except Rejected as exc:
                await plain_response(scope, send, exc.status, exc.message)
                return
            use = _SlotUse(self.scheduler, slot)
            try:
                link = self.links.get(slot.address)
                await link.proxy(
                    next(self._stream_ids), scope, receive, send, use.finish, route.method_name, use.retiring
                )
            except ContainerUnreachable as exc:
                # Nothing reached the app: tell the scheduler, and try another container.
                use.finish(unreachable=True)
                receive = _replaying(exc.consumed, receive)
                log.warning("container at %s unreachable (attempt %d)", slot.address, attempt + 1)
                continue
            finally:
                use.finish()
            return
        await plain_response(scope, send, 502, "no container of this endpoint could be reached; retry")

    async def _too_many(self, scope: dict[str, Any], send: Any, wait: float) -> None:
        retry_after = max(1, math.ceil(wait))
        message = (
            f"Rate limit exceeded: this workspace may make {self.limiter.describe()}. "
            f"Retry after {retry_after} s, or send fewer requests per second."
        )
        await plain_response(scope, send, 429, message, [(b"retry-after", str(retry_after).encode())])
