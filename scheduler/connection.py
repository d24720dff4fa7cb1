"""How a daemon holds its long-lived stream to the scheduler: reconnect, with one backoff policy.

Workers and ingresses both keep a stream open to the scheduler for their whole life; this is the
one loop that re-opens it when it ends, so both retry the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnects: quick at first (a restart is usually over in a second), then
    capped, and back to the start once a stream has been up."""

    delays: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0)

    def delay(self, attempt: int) -> float:
        return self.delays[min(attempt, len(self.delays) - 1)]


async def stay_connected(
    connect: Callable[[], Awaitable[None]],
    on_lost: Callable[[], None] = lambda: None,
    backoff: Backoff = Backoff(),
) -> None:
    """Run `connect` (which holds the stream until it ends) again and again, until cancelled."""
    attempt = 0
    while True:
        try:
            await connect()
            attempt = 0
        except grpc.RpcError as exc:
            log.warning("scheduler stream ended: %s", exc.details() if isinstance(exc, grpc.Call) else exc)
        except Exception:
            log.exception("scheduler stream failed")
        finally:
            on_lost()
        await asyncio.sleep(backoff.delay(attempt))
        attempt += 1
