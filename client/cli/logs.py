"""`stoker app logs` and the container output `stoker serve` prints: one format for both."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import grpc

from client.connection import rpc_errors, scheduler_stub
from protos import stoker_pb2 as pb


def format_line(line: pb.LogLine) -> str:
    """`HH:MM:SS.mmm [function container] text`; stoker's own notices have no container."""
    stamp = time.strftime("%H:%M:%S", time.localtime(line.time)) + f".{int(line.time * 1000) % 1000:03d}"
    source = f"{line.function} {line.container_id}" if line.container_id else "stoker"
    return f"{stamp} [{source}] {line.text}"


def app_logs(
    name: str, environment: str, follow: bool, tail: int, stopped: Callable[[], bool] = lambda: False
) -> Iterator[pb.LogLine]:
    """The app's recent lines, then (with `follow`) new ones until `stopped()` (checked every
    0.1 s) or the caller stops iterating.

    A thread reads the stream and this waits on a queue, so that Ctrl-C (a signal handler that
    makes `stopped()` true) never raises into the middle of gRPC's or the queue's locking: a
    KeyboardInterrupt there can leave a lock that nothing releases (grpc/grpc#19973)."""
    request = pb.AppLogsRequest(name=name, environment=environment, follow=follow, tail=tail)
    received: queue.Queue[pb.LogLine | grpc.RpcError | None] = queue.Queue()
    stub, metadata = scheduler_stub()
    with rpc_errors():
        call = stub.AppLogs(request, metadata=metadata)
        threading.Thread(target=_read, args=(call, received), name="stoker-logs", daemon=True).start()
        try:
            while not stopped():
                try:
                    item = received.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is None:
                    return
                if isinstance(item, grpc.RpcError):
                    raise item  # rpc_errors() turns it into a client error
                yield item
        finally:
            call.cancel()  # type: ignore[no-untyped-call]  # ends the call, then its reader


def _read(call: grpc.CallIterator[pb.LogLine], received: queue.Queue[pb.LogLine | grpc.RpcError | None]) -> None:
    try:
        for line in call:
            received.put(line)
    except grpc.RpcError as exc:
        received.put(exc)  # the cancel of a caller that has stopped goes unread
    received.put(None)
