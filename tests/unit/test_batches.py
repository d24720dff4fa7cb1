"""Stream messages batched per gRPC message (protos/batches.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from protos import batches as batching
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
        batches = batching.response_batches(outbox)
        assert await take(batches, 1) == [[1, 2, 3, 4, 5]]

    asyncio.run(run())


def test_a_lone_frame_goes_at_once_and_later_ones_follow() -> None:
    async def run() -> None:
        outbox: asyncio.Queue[pb.RequestFrame] = asyncio.Queue()
        batches = batching.request_batches(outbox)
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
        total = batching.MAX_BATCH_ITEMS * 2 + 1
        for i in range(1, total + 1):
            outbox.put_nowait(pb.ResponseFrame(id=i, credit=1))
        got = await take(batching.response_batches(outbox), 3)
        assert [len(ids) for ids in got] == [batching.MAX_BATCH_ITEMS, batching.MAX_BATCH_ITEMS, 1]
        assert [i for ids in got for i in ids] == list(range(1, total + 1))

    asyncio.run(run())


def test_batches_are_bounded_in_bytes_and_a_large_frame_goes_alone() -> None:
    async def run() -> None:
        outbox: asyncio.Queue[pb.ResponseFrame | None] = asyncio.Queue()
        half = batching.MAX_BATCH_BYTES // 2
        outbox.put_nowait(body(1, half - 1000))
        outbox.put_nowait(body(2, half - 1000))  # fits with the first
        outbox.put_nowait(body(3, half))  # would not: next message
        outbox.put_nowait(body(4, 3 * batching.MAX_BATCH_BYTES))  # over the bound on its own
        outbox.put_nowait(body(5, 10))
        got = await take(batching.response_batches(outbox), 4)
        assert got == [[1, 2], [3], [4], [5]]

    asyncio.run(run())


def test_pickled_call_payloads_count_toward_the_bound() -> None:
    async def run() -> None:
        outbox: asyncio.Queue[pb.RequestFrame] = asyncio.Queue()
        args = b"p" * (batching.MAX_BATCH_BYTES - 10)
        outbox.put_nowait(pb.RequestFrame(id=1, call=pb.CallRequest(function="f", args=args)))
        outbox.put_nowait(pb.RequestFrame(id=2, call=pb.CallRequest(function="f", args=args)))
        assert await take(batching.request_batches(outbox), 2) == [[1], [2]]
        result = pb.CallOutput(result=args)
        out: asyncio.Queue[pb.ResponseFrame | None] = asyncio.Queue()
        out.put_nowait(pb.ResponseFrame(id=1, output=result))
        out.put_nowait(pb.ResponseFrame(id=2, output=result))
        assert await take(batching.response_batches(out), 2) == [[1], [2]]

    asyncio.run(run())


def test_none_ends_the_stream_after_the_frames_before_it() -> None:
    async def run() -> None:
        outbox: asyncio.Queue[pb.ResponseFrame | None] = asyncio.Queue()
        outbox.put_nowait(pb.ResponseFrame(id=1, done=pb.Done()))
        outbox.put_nowait(pb.ResponseFrame(id=2, done=pb.Done()))
        outbox.put_nowait(None)
        outbox.put_nowait(pb.ResponseFrame(id=3, done=pb.Done()))
        messages = [[frame.id for frame in message.frames] async for message in batching.response_batches(outbox)]
        assert messages == [[1, 2]]

    asyncio.run(run())


def test_payload_size_reads_large_fields_without_serializing() -> None:
    chunk = body(1, 65536)
    assert 65536 <= batching.payload_size(chunk) <= 65536 + 256
    text = pb.RequestFrame(id=1, event=pb.AsgiEvent(type="websocket.receive", text="é" * 1000))
    assert batching.payload_size(text) >= len("é".encode() * 1000)
    scope = pb.RequestFrame(
        id=1, scope=pb.Scope(type="http", path="/", headers=[pb.Header(name=b"a", value=b"b" * 5000)])
    )
    assert batching.payload_size(scope) >= 5000


def test_ingress_messages_go_batched_and_come_out_one_by_one() -> None:
    async def run() -> None:
        outbox: asyncio.Queue[pb.IngressMessage] = asyncio.Queue()
        outbox.put_nowait(pb.IngressMessage(hello=pb.IngressHello(ingress_id="i")))
        for slot_id in (1, 2):
            outbox.put_nowait(pb.IngressMessage(acquire=pb.Acquire(slot_id=slot_id, function_id="f")))
        outbox.put_nowait(pb.IngressMessage(release=pb.Release(slot_id=1)))
        sent = batching.ingress_message_batches(outbox)
        first = await asyncio.wait_for(anext(sent), 5)
        assert len(first.messages) == 4

        async def wire() -> AsyncIterator[pb.IngressMessages]:
            yield first

        kinds = [message.WhichOneof("kind") async for message in batching.ingress_messages(wire())]
        assert kinds == ["hello", "acquire", "acquire", "release"]

    asyncio.run(run())


def test_ingress_events_end_at_none_after_what_was_queued() -> None:
    async def run() -> None:
        outbox: asyncio.Queue[pb.IngressEvent | None] = asyncio.Queue()
        for slot_id in (1, 2, 3):
            outbox.put_nowait(pb.IngressEvent(assignment=pb.Assignment(slot_id=slot_id, address="a")))
        outbox.put_nowait(None)
        got = [[e.assignment.slot_id for e in m.events] async for m in batching.ingress_event_batches(outbox)]
        assert got == [[1, 2, 3]]

    asyncio.run(run())
