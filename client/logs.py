"""`stoker app logs` and the container output `stoker serve` prints: one format for both."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc

from client import config as client_config
from client.exceptions import from_rpc_error
from client.rpc import CHANNEL_OPTIONS, require, token_metadata
from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from scheduler.connection import scheduler_channel


def format_line(line: pb.LogLine) -> str:
    """`HH:MM:SS.mmm [function container] text`; stoker's own notices have no container."""
    stamp = time.strftime("%H:%M:%S", time.localtime(line.time)) + f".{int(line.time * 1000) % 1000:03d}"
    source = f"{line.function} {line.container_id}" if line.container_id else "stoker"
    return f"{stamp} [{source}] {line.text}"


def app_logs(name: str, environment: str, follow: bool, tail: int) -> Iterator[pb.LogLine]:
    """The app's recent lines, then (with `follow`) new ones until the caller stops iterating."""
    cfg = require(client_config.load())
    request = pb.AppLogsRequest(name=name, environment=environment, follow=follow, tail=tail)
    with scheduler_channel(cfg.scheduler, options=CHANNEL_OPTIONS) as channel:
        call = pb_grpc.SchedulerStub(channel).AppLogs(request, metadata=token_metadata(cfg.token))
        try:
            yield from call  # leaving early closes the channel, which ends the call
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
