"""Stream messages batched into gRPC messages: what a writer has queued goes out together.

Every gRPC message costs a round trip through grpc's completion queue in each process, whatever
its size, so the writers of the request path's streams (Container.Exchange both ways, and the
ingress's IngressConnect both ways) send everything already waiting in their outbox as one
message. A batch never waits for more: the first item is awaited, then only what is queued at
that moment joins it. A batch is bounded in items and in payload bytes, far below the 64 MiB
message limit, so items near that limit (pickled call arguments, results) still go one per message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from protos import stoker_pb2 as pb

MAX_BATCH_ITEMS = 64
MAX_BATCH_BYTES = 1024 * 1024  # payload bytes per message; the message limit is 64 MiB
_FRAME_OVERHEAD = 64  # ids, types, flags: a generous bound for a frame's small fields

Item = TypeVar("Item")
Batch = TypeVar("Batch")


async def batches(
    outbox: asyncio.Queue[Item] | asyncio.Queue[Item | None],
    wrap: Callable[[list[Item]], Batch],
    size: Callable[[Item], int],
) -> AsyncIterator[Batch]:
    """Messages of the items put in `outbox`, in order; ends at a None, after what preceded it."""
    held: Item | None = None  # the item that did not fit in the last batch
    while True:
        first = held if held is not None else await outbox.get()
        held = None
        if first is None:
            return
        if outbox.empty():  # the common case at low load: nothing to measure
            yield wrap([first])
            continue
        items = [first]
        total = size(first)
        while len(items) < MAX_BATCH_ITEMS and not outbox.empty():
            item = outbox.get_nowait()
            if item is None:
                yield wrap(items)
                return
            total += size(item)
            if total > MAX_BATCH_BYTES:
                held = item
                break
            items.append(item)
        yield wrap(items)


def payload_size(frame: pb.RequestFrame | pb.ResponseFrame) -> int:
    """About how many bytes an Exchange frame takes on the wire, read from its large fields:
    serializing it to measure (ByteSize) costs ~40 us for a 64 KiB body chunk."""
    kind = frame.WhichOneof("kind")
    if kind == "event":
        event = frame.event
        if event.body or event.text:
            return len(event.body) + 4 * len(event.text) + _FRAME_OVERHEAD
    elif kind == "call" and isinstance(frame, pb.RequestFrame):
        return len(frame.call.args) + _FRAME_OVERHEAD
    elif kind == "output" and isinstance(frame, pb.ResponseFrame):
        output = frame.output
        if output.WhichOneof("kind") != "error":
            return len(output.item) + len(output.result) + _FRAME_OVERHEAD
    return frame.ByteSize()  # headers, scopes, errors: small, and cheap to measure


def request_batches(
    outbox: asyncio.Queue[pb.RequestFrame] | asyncio.Queue[pb.RequestFrame | None],
) -> AsyncIterator[pb.RequestFrames]:
    return batches(outbox, lambda frames: pb.RequestFrames(frames=frames), payload_size)


def response_batches(
    outbox: asyncio.Queue[pb.ResponseFrame] | asyncio.Queue[pb.ResponseFrame | None],
) -> AsyncIterator[pb.ResponseFrames]:
    return batches(outbox, lambda frames: pb.ResponseFrames(frames=frames), payload_size)


def ingress_message_batches(
    outbox: asyncio.Queue[pb.IngressMessage] | asyncio.Queue[pb.IngressMessage | None],
) -> AsyncIterator[pb.IngressMessages]:
    return batches(outbox, lambda messages: pb.IngressMessages(messages=messages), pb.IngressMessage.ByteSize)


def ingress_event_batches(
    outbox: asyncio.Queue[pb.IngressEvent] | asyncio.Queue[pb.IngressEvent | None],
) -> AsyncIterator[pb.IngressEvents]:
    return batches(outbox, lambda events: pb.IngressEvents(events=events), pb.IngressEvent.ByteSize)


async def ingress_messages(stream: AsyncIterator[pb.IngressMessages]) -> AsyncIterator[pb.IngressMessage]:
    """The messages of an IngressConnect request stream, one by one."""
    async for batch in stream:
        for message in batch.messages:
            yield message
