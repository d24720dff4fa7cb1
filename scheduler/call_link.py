"""The scheduler's end of function calls: one long-lived, multiplexed Exchange stream per
container, carrying every call the scheduler places there.

A call is a `call` frame; the container answers with `output` frames (items, then a result or an
error) and a `done` frame. Each item takes a credit that goes back once the caller's stream took
it (in batches: CREDIT_BATCH), so a generator never runs more than WINDOW items ahead of its caller. A call whose caller
leaves is cancelled in the container with an `http.disconnect` event for its id.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncGenerator, Callable

import grpc

from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from protos.asgi import WINDOW
from protos.batches import request_batches

log = logging.getLogger(__name__)

MAX_MESSAGE = 64 * 1024 * 1024
# Credits go back in batches of up to a quarter window while items queue up (fewer frames), and
# at once whenever the caller has caught up, so the container never waits on a credit held here.
CREDIT_BATCH = max(1, WINDOW // 4)


class ContainerLost(Exception):
    """The stream to the container broke during a call. `reached` False: the container never
    said hello, so the call never started and may be placed again."""

    def __init__(self, reached: bool, detail: str = "") -> None:
        super().__init__(detail or "the container stopped during the call")
        self.reached = reached


class CallLink:
    def __init__(self, address: str, on_broken: Callable[[CallLink], None]) -> None:
        self.address = address
        self._on_broken = on_broken
        self.broken = False
        self.reached = False  # the container's hello frame arrived
        self._ids = itertools.count(1)
        self._outbox: asyncio.Queue[pb.RequestFrame] = asyncio.Queue()
        self._calls: dict[int, asyncio.Queue[pb.ResponseFrame | None]] = {}
        self._channel = grpc.aio.insecure_channel(
            address,
            options=[("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)],
        )
        self._stream = pb_grpc.ContainerStub(self._channel).Exchange(request_batches(self._outbox))
        self._reader = asyncio.create_task(self._read(), name=f"call-link-{address}")

    async def _read(self) -> None:
        try:
            async for batch in self._stream:
                for frame in batch.frames:
                    if frame.id == 0:
                        self.reached = True
                        continue
                    inbox = self._calls.get(frame.id)
                    if inbox is not None:
                        inbox.put_nowait(frame)
        except grpc.RpcError as exc:
            detail = exc.details() if isinstance(exc, grpc.Call) else exc
            log.warning("call stream to %s ended: %s", self.address, detail)
        finally:
            self.broken = True
            self._on_broken(self)
            for inbox in self._calls.values():
                inbox.put_nowait(None)
            await self._channel.close(None)

    async def close(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def call(self, request: pb.CallRequest) -> AsyncGenerator[pb.CallOutput, None]:
        """The call's outputs: items as the function yields them, then its result or error.
        Raises ContainerLost when the container goes away first."""
        if self.broken:
            raise ContainerLost(reached=self.reached)
        call_id = next(self._ids)
        inbox: asyncio.Queue[pb.ResponseFrame | None] = asyncio.Queue()
        self._calls[call_id] = inbox
        self._outbox.put_nowait(pb.RequestFrame(id=call_id, call=request))
        finished = False
        owed = 0  # items the caller took, not yet credited
        try:
            while True:
                frame = await inbox.get()
                if frame is None:
                    raise ContainerLost(reached=self.reached)
                kind = frame.WhichOneof("kind")
                if kind == "output":
                    finished = frame.output.WhichOneof("kind") != "item"
                    yield frame.output
                    if finished:
                        return
                    owed += 1
                    if owed >= CREDIT_BATCH or inbox.empty():
                        self._outbox.put_nowait(pb.RequestFrame(id=call_id, credit=owed))
                        owed = 0
                elif kind == "done":
                    finished = True
                    raise ContainerLost(reached=True, detail=f"the call ended without a result: {frame.done or '?'}")
        finally:
            self._calls.pop(call_id, None)
            if not finished and not self.broken:
                self._outbox.put_nowait(pb.RequestFrame(id=call_id, event=pb.AsgiEvent(type="http.disconnect")))


class CallLinks:
    """One link per container address, replaced when its stream breaks."""

    def __init__(self) -> None:
        self._links: dict[str, CallLink] = {}

    def get(self, address: str) -> CallLink:
        link = self._links.get(address)
        if link is None or link.broken:
            link = self._links[address] = CallLink(address, self._forget)
        return link

    def _forget(self, link: CallLink) -> None:
        if self._links.get(link.address) is link:
            del self._links[link.address]

    async def close(self) -> None:
        await asyncio.gather(*(link.close() for link in self._links.values()), return_exceptions=True)
        self._links.clear()
