"""The client side of the Scheduler service: how a daemon, the CLI, the SDK or a container
reaches the scheduler. Channels (TLS when configured), the metadata that proves a caller is one
of the cluster's daemons, and the reconnect loop with one backoff policy.

Workers and ingresses both keep a stream open to the scheduler for their whole life; this is the
one loop that re-opens it when it ends, so both retry the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from protos import container_env

log = logging.getLogger(__name__)

# Workers and ingresses present the cluster secret in this metadata key (the scheduler's auth
# interceptor checks it); clients present `authorization: Bearer <token>` instead.
CLUSTER_SECRET_HEADER = "x-stoker-cluster-secret"


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


# ---------------------------------------------------------------- channels, with optional TLS


def _credentials() -> grpc.ChannelCredentials | None:
    ca = os.environ.get(container_env.TLS_CA, "")
    return grpc.ssl_channel_credentials(Path(ca).read_bytes()) if ca else None


def scheduler_channel(address: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
    """A blocking channel to the scheduler: TLS when STOKER_TLS_CA names a CA, else plain."""
    credentials = _credentials()
    if credentials is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, credentials, options=options)


def scheduler_aio_channel(address: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """An asyncio channel to the scheduler: TLS when STOKER_TLS_CA names a CA, else plain."""
    credentials = _credentials()
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, credentials, options=options)
