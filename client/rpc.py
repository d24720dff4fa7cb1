"""Channels to the scheduler, for the CLI and SDK."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from client import config as client_config
from client.config import ClientConfig
from client.exceptions import ConnectionError, from_rpc_error
from protos import stoker_pb2_grpc as pb_grpc

MAX_MESSAGE = 128 * 1024 * 1024
CHANNEL_OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]


def require(config: ClientConfig | None) -> ClientConfig:
    if config is None:
        raise ConnectionError(
            "no stoker cluster is configured: run `stoker up` on this machine, or set STOKER_SCHEDULER=host:port"
        )
    return config


def reachable(address: str, timeout: float = 1.0) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
            return True
        except grpc.FutureTimeoutError:
            return False


@contextmanager
def scheduler_stub() -> Iterator[pb_grpc.SchedulerStub]:
    """A stub to the configured scheduler, for one-shot calls; gRPC errors leave as `client.exceptions`."""
    cfg = require(client_config.load())
    with grpc.insecure_channel(cfg.scheduler, options=CHANNEL_OPTIONS) as channel:
        try:
            yield pb_grpc.SchedulerStub(channel)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
