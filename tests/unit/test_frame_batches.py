"""Exchange frames batched per gRPC message (protos/frames.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from protos import frames
from protos import stoker_pb2 as pb


def body(request_id: int, size: int) -> pb.ResponseFrame:
    return pb.ResponseFrame(id=request_id, event=pb.AsgiEvent(type="http.response.body", body=b"x" * size))


async def take(
    batches: AsyncIterator[pb.RequestFrames] | AsyncIterator[pb.ResponseFrames], count: int
) -> list[list[int]]:
    """The ids of the frames in the next `count` messages."""
    got = []
    for _ in range(count):
        message = await asyncio.wait_for(anext(batches), 5)
        got.append([frame.id for frame in message.frames])
    return got


def test_everything_queued_goes_in_one_message_in_order() -> None:
    async def run() -> None:
        outbox: asyncio.Queue[pb.ResponseFrame | None] = asyncio.Queue()
        for i in range(1, 6):
            outbox.put_nowait(pb.ResponseFrame(id=i, credit=1))
        batches = frames.response_batches(outbox)
        assert await take(batches, 1) == [[1, 2, 3, 4, 5]]

    asyncio.run(run())


def test_a_lone_frame_goes_at_once_and_later_ones_follow() -> None:
    async def run() -> None:
        outbox: asyncio.Queue[pb.RequestFrame] = asyncio.Queue()
        batches = frames.request_batches(outbox)
        outbox.put_nowait(pb.RequestFrame(id=1, credit=1))
        assert await take(batches, 1) == [[1]]  # nothing else was queued: it did not wait for more
        waiting = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        outbox.put_nowait(pb.RequestFrame(id=2, credit=1))
        outbox.put_nowait(pb.RequestFrame(id=3, credit=1))
        message = await asyncio.wait_for(waiting, 5)
        assert [frame.id for frame in message.frames] == [2, 3]

    asyncio.run(run())


def test_batches_are_bounded_in_frames() -> None:
    async def run() -> None:
        outbox: asyncio.Queue[pb.ResponseFrame | None] = asyncio.Queue()
        total = frames.MAX_BATCH_FRAMES * 2 + 1
        for i in range(1, total + 1):
            outbox.put_nowait(pb.ResponseFrame(id=i, credit=1))
        got = await take(frames.response_batches(outbox), 3)
        assert [len(ids) for ids in got] == [frames.MAX_BATCH_FRAMES, frames.MAX_BATCH_FRAMES, 1]
        assert [i for ids in got for i in ids] == list(range(1, total + 1))

    asyncio.run(run())


def test_batches_are_bounded_in_bytes_and_a_large_frame_goes_alone() -> None:
    async def run() -> None:
        outbox: asyncio.Queue[pb.ResponseFrame | None] = asyncio.Queue()
        half = frames.MAX_BATCH_BYTES // 2
        outbox.put_nowait(body(1, half - 1000))
        outbox.put_nowait(body(2, half - 1000))  # fits with the first
        outbox.put_nowait(body(3, half))  # would not: next message
        outbox.put_nowait(body(4, 3 * frames.MAX_BATCH_BYTES))  # over the bound on its own
        outbox.put_nowait(body(5, 10))
        got = await take(frames.response_batches(outbox), 4)
        assert got == [[1, 2], [3], [4], [5]]

    asyncio.run(run())


def test_pickled_call_payloads_count_toward_the_bound() -> None:
    async def run() -> None:
        outbox: asyncio.Queue[pb.RequestFrame] = asyncio.Queue()
        args = b"p" * (frames.MAX_BATCH_BYTES - 10)
        outbox.put_nowait(pb.RequestFrame(id=1, call=pb.CallRequest(function="f", args=args)))
        outbox.put_nowait(pb.RequestFrame(id=2, call=pb.CallRequest(function="f", args=args)))
        assert await take(frames.request_batches(outbox), 2) == [[1], [2]]
        result = pb.CallOutput(result=args)
        out: asyncio.Queue[pb.ResponseFrame | None] = asyncio.Queue()
        out.put_nowait(pb.ResponseFrame(id=1, output=result))
        out.put_nowait(pb.ResponseFrame(id=2, output=result))
        assert await take(frames.response_batches(out), 2) == [[1], [2]]

    asyncio.run(run())


def test_none_ends_the_stream_after_the_frames_before_it() -> None:
    async def run() -> None:
        outbox: asyncio.Queue[pb.ResponseFrame | None] = asyncio.Queue()
        outbox.put_nowait(pb.ResponseFrame(id=1, done=""))
        outbox.put_nowait(pb.ResponseFrame(id=2, done=""))
        outbox.put_nowait(None)
        outbox.put_nowait(pb.ResponseFrame(id=3, done=""))
        messages = [[frame.id for frame in message.frames] async for message in frames.response_batches(outbox)]
        assert messages == [[1, 2]]

    asyncio.run(run())


def test_payload_size_reads_large_fields_without_serializing() -> None:
    chunk = body(1, 65536)
    assert 65536 <= frames.payload_size(chunk) <= 65536 + 256
    text = pb.RequestFrame(id=1, event=pb.AsgiEvent(type="websocket.receive", text="é" * 1000))
    assert frames.payload_size(text) >= len("é".encode() * 1000)
    scope = pb.RequestFrame(
        id=1, scope=pb.Scope(type="http", path="/", headers=[pb.Header(name=b"a", value=b"b" * 5000)])
    )
    assert frames.payload_size(scope) >= 5000
