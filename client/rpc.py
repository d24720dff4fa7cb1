"""Channels to the scheduler, for the CLI and SDK."""

from __future__ import annotations

import grpc

from client.config import ClientConfig
from client.exceptions import ConnectionError

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
