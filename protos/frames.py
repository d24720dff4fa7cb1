"""Exchange frames batched into gRPC messages: what is queued goes out together.

Every gRPC message costs a round trip through grpc's completion queue in each process, whatever
its size, so the writers of both ends of a Container.Exchange stream send every frame already
waiting in their outbox as one RequestFrames / ResponseFrames message. A batch never waits for
more frames: the first frame is awaited, then only what is queued at that moment joins it. A
batch is bounded in frames and in payload bytes, far below the 64 MiB message limit, so frames
near that limit (pickled call arguments, results) still go one per message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from protos import stoker_pb2 as pb

MAX_BATCH_FRAMES = 64
MAX_BATCH_BYTES = 1024 * 1024  # payload bytes per message; the message limit is 64 MiB
_FRAME_OVERHEAD = 64  # ids, types, flags: a generous bound for a frame's small fields

Frame = TypeVar("Frame", pb.RequestFrame, pb.ResponseFrame)
Batch = TypeVar("Batch", pb.RequestFrames, pb.ResponseFrames)


def payload_size(frame: pb.RequestFrame | pb.ResponseFrame) -> int:
    """About how many bytes a frame takes on the wire, read from its large fields: serializing it
    to measure (ByteSize) costs ~40 us for a 64 KiB body chunk."""
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


async def _batches(
    outbox: asyncio.Queue[Frame] | asyncio.Queue[Frame | None], wrap: Callable[[list[Frame]], Batch]
) -> AsyncIterator[Batch]:
    """Messages of the frames put in `outbox`, in order; ends at a None, after what preceded it."""
    held: Frame | None = None  # the frame that did not fit in the last batch
    while True:
        first = held if held is not None else await outbox.get()
        held = None
        if first is None:
            return
        if outbox.empty():  # the common case at low load: nothing to measure
            yield wrap([first])
            continue
        frames = [first]
        size = payload_size(first)
        while len(frames) < MAX_BATCH_FRAMES and not outbox.empty():
            frame = outbox.get_nowait()
            if frame is None:
                yield wrap(frames)
                return
            size += payload_size(frame)
            if size > MAX_BATCH_BYTES:
                held = frame
                break
            frames.append(frame)
        yield wrap(frames)


def request_batches(
    outbox: asyncio.Queue[pb.RequestFrame] | asyncio.Queue[pb.RequestFrame | None],
) -> AsyncIterator[pb.RequestFrames]:
    return _batches(outbox, lambda frames: pb.RequestFrames(frames=frames))


def response_batches(
    outbox: asyncio.Queue[pb.ResponseFrame] | asyncio.Queue[pb.ResponseFrame | None],
) -> AsyncIterator[pb.ResponseFrames]:
    return _batches(outbox, lambda frames: pb.ResponseFrames(frames=frames))
