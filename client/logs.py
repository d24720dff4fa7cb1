"""`stoker app logs` and the container output `stoker serve` prints: one format for both."""

from __future__ import annotations

import time
from collections.abc import Iterator

from client.rpc import scheduler_stub
from protos import stoker_pb2 as pb


def format_line(line: pb.LogLine) -> str:
    """`HH:MM:SS.mmm [function container] text`; stoker's own notices have no container."""
    stamp = time.strftime("%H:%M:%S", time.localtime(line.time)) + f".{int(line.time * 1000) % 1000:03d}"
    source = f"{line.function} {line.container_id}" if line.container_id else "stoker"
    return f"{stamp} [{source}] {line.text}"


def app_logs(name: str, environment: str, follow: bool, tail: int) -> Iterator[pb.LogLine]:
    """The app's recent lines, then (with `follow`) new ones until the caller stops iterating."""
    request = pb.AppLogsRequest(name=name, environment=environment, follow=follow, tail=tail)
    with scheduler_stub() as stub:
        yield from stub.AppLogs(request)  # leaving early closes the channel, which ends the call
