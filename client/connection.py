"""Channels to the scheduler, for the CLI and SDK."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc

from client import config as client_config
from client.config import ClientConfig
from client.exceptions import ConnectionError, from_rpc_error
from protos import stoker_pb2_grpc as pb_grpc
from protos.channels import scheduler_channel

MAX_MESSAGE = 128 * 1024 * 1024
CHANNEL_OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]


def require(config: ClientConfig | None) -> ClientConfig:
    if config is None:
        raise ConnectionError(
            "no stoker cluster is configured: run `stoker up` on this machine, or set STOKER_SCHEDULER=host:port"
        )
    return config


def reachable(address: str, timeout: float = 1.0) -> bool:
    with scheduler_channel(address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
            return True
        except grpc.FutureTimeoutError:
            return False


def token_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """What every client call carries: the workspace token (none: the scheduler says how to get one)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


class _WithToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    """Adds the workspace token to every unary and server-streaming call on a channel."""

    def __init__(self, token: str) -> None:
        self.metadata = token_metadata(token)

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        details = _CallDetails(
            details.method,
            details.timeout,
            (*(details.metadata or ()), *self.metadata),
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )
        return continuation(details, request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return self.intercept_unary_unary(continuation, details, request)


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    pass


@contextmanager
def rpc_errors() -> Iterator[None]:
    """gRPC errors raised inside leave as the `client.exceptions` a user can act on."""
    try:
        yield
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None


@contextmanager
def scheduler_stub() -> Iterator[pb_grpc.SchedulerStub]:
    """A stub to the configured scheduler, for one-shot calls, carrying the workspace token;
    gRPC errors leave as `client.exceptions`."""
    cfg = require(client_config.load())
    with scheduler_channel(cfg.scheduler, options=CHANNEL_OPTIONS) as channel, rpc_errors():
        yield pb_grpc.SchedulerStub(grpc.intercept_channel(channel, _WithToken(cfg.token)))
