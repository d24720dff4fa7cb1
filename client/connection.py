"""The one way the SDK and the CLI reach the scheduler: a stub to the configured cluster (or to
a given one) and the metadata every call on it carries, plus the table from gRPC errors to
`client.exceptions`. The channels themselves come from protos/channels.py (TLS when configured).

The metadata is the token from the client config: the workspace token in a program or the CLI,
the container's call credential inside a container.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import grpc

from client import config as client_config
from client.config import ClientConfig
from client.exceptions import ConnectionError, InvalidError, from_rpc_error
from protos import stoker_pb2_grpc as pb_grpc
from protos.channels import scheduler_aio_channel, scheduler_channel

MAX_MESSAGE = 128 * 1024 * 1024
CHANNEL_OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]

Metadata = tuple[tuple[str, str], ...]

_lock = threading.Lock()
_stubs: dict[str, pb_grpc.SchedulerStub] = {}  # by scheduler address, each on its own channel
# Why this process may not call the scheduler, if it may not: set in a memory-snapshot template
# (worker/runtime/snapshot.py), whose channels every container forked from it would inherit broken.
calls_refused = ""


def require(config: ClientConfig | None) -> ClientConfig:
    if config is None:
        raise ConnectionError(
            "no stoker cluster is configured: run `stoker up` on this machine, or set STOKER_SCHEDULER=host:port"
        )
    return config


def token_metadata(token: str) -> Metadata:
    """What every client call carries: the workspace token (none: the scheduler says how to get one)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def scheduler_stub(config: ClientConfig | None = None) -> tuple[pb_grpc.SchedulerStub, Metadata]:
    """A stub on this process's channel to the scheduler of `config` (default: the configured
    cluster; ConnectionError when there is none), and the metadata every call must carry.
    Channels are made on first use, so a forked container never inherits one; the stub is kept
    with its channel (building one sets up every method, ~100 us, per call)."""
    if calls_refused:
        raise InvalidError(calls_refused)
    cfg = require(client_config.load()) if config is None else config
    with _lock:
        stub = _stubs.get(cfg.scheduler)
        if stub is None:
            channel = scheduler_channel(cfg.scheduler, options=CHANNEL_OPTIONS)
            stub = _stubs[cfg.scheduler] = pb_grpc.SchedulerStub(channel)
    return stub, token_metadata(cfg.token)


@asynccontextmanager
async def scheduler_aio_stub(config: ClientConfig) -> AsyncIterator[tuple[pb_grpc.SchedulerAsyncStub, Metadata]]:
    """scheduler_stub for asyncio code, on a channel of its own that closes on leaving (an aio
    channel belongs to one event loop, so it is not kept for the process)."""
    async with scheduler_aio_channel(config.scheduler, options=CHANNEL_OPTIONS) as channel:
        yield pb_grpc.SchedulerStub(channel), token_metadata(config.token)


def reachable(address: str, timeout: float = 1.0) -> bool:
    """Whether a scheduler answers at `address`; the probe's channel is not kept."""
    with scheduler_channel(address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
            return True
        except grpc.FutureTimeoutError:
            return False


@contextmanager
def rpc_errors() -> Iterator[None]:
    """gRPC errors raised inside leave as the `client.exceptions` a user can act on."""
    try:
        yield
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None
