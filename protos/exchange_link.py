"""The calling end of Container.Exchange: one long-lived, multiplexed stream per container.

The ingress carries HTTP requests over it (ingress/container_link.py) and the scheduler function
calls (scheduler/call_link.py); both open their requests by id on one shared stream, read the
container's frames back sorted by id, and replace a link whose stream broke.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import ClassVar, Generic, TypeVar

import grpc

from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from protos.batches import request_batches

log = logging.getLogger(__name__)

# The largest gRPC message either end of the stream accepts (the container's server too).
MAX_MESSAGE = 64 * 1024 * 1024
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)]


T = TypeVar("T")


class Inbox(Generic[T]):
    """What arrived for one open id, in order (at the ingress, None says the stream broke). One
    per request at each end, so it is a deque and a future where asyncio.Queue would also build
    an Event and two waiter deques."""

    __slots__ = ("_frames", "_waiter")

    def __init__(self) -> None:
        self._frames: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, frame: T) -> None:
        self._frames.append(frame)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._frames

    async def get(self) -> T:
        while not self._frames:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._frames.popleft()


class ExchangeLink:
    """A stream to the container at `address`. Frames for an open id go to its inbox; a None in
    every inbox says the stream broke."""

    what: ClassVar[str] = "stream"  # how log lines name it

    def __init__(self, address: str, on_broken: Callable[[ExchangeLink], None]) -> None:
        self.address = address
        self._on_broken = on_broken
        self.broken = False
        self.reached = False  # the container's hello frame arrived
        self._outbox: asyncio.Queue[pb.RequestFrame] = asyncio.Queue()
        self._inboxes: dict[int, Inbox[pb.ResponseFrame | None]] = {}
        self._channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stream = pb_grpc.ContainerStub(self._channel).Exchange(request_batches(self._outbox))
        self._reader = asyncio.create_task(self._read(), name=f"{self.what}-{address}")

    def open(self, frame_id: int) -> Inbox[pb.ResponseFrame | None]:
        """The inbox of a request or call about to be opened with this id."""
        inbox: Inbox[pb.ResponseFrame | None] = Inbox()
        self._inboxes[frame_id] = inbox
        return inbox

    def close_id(self, frame_id: int, tell_container: pb.RequestFrame | None = None) -> None:
        """Take no more frames for this id. `tell_container`: a last frame for it, for a request
        or call that may still be at work in the container and would otherwise wait for good on
        a credit or a message (a disconnect event, a cancel); nothing can carry it once the
        stream is broken, and nothing there waits then."""
        self._inboxes.pop(frame_id, None)
        if tell_container is not None and not self.broken:
            self._outbox.put_nowait(tell_container)

    async def _read(self) -> None:
        try:
            async for batch in self._stream:
                for frame in batch.frames:
                    if frame.id == 0:
                        self.reached = True
                        continue
                    inbox = self._inboxes.get(frame.id)
                    if inbox is not None:
                        inbox.put_nowait(frame)
        except grpc.RpcError as exc:
            detail = exc.details() if isinstance(exc, grpc.Call) else exc
            log.warning("%s to container %s ended: %s", self.what, self.address, detail)
        finally:
            self.broken = True
            self._on_broken(self)
            for inbox in self._inboxes.values():
                inbox.put_nowait(None)
            await self._channel.close(None)

    async def close(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


L = TypeVar("L", bound=ExchangeLink)


class ExchangeLinks(Generic[L]):
    """The pool of links, one per container address, replaced when a stream breaks; a stopped
    container's link goes, so the pool holds only live containers."""

    def __init__(self, make: Callable[[str, Callable[[ExchangeLink], None]], L]) -> None:
        self._make = make
        self._links: dict[str, L] = {}

    def get(self, address: str) -> L:
        link = self._links.get(address)
        if link is None or link.broken:
            link = self._links[address] = self._make(address, self._forget)
        return link

    def _forget(self, link: ExchangeLink) -> None:
        if self._links.get(link.address) is link:
            del self._links[link.address]

    async def close(self) -> None:
        await asyncio.gather(*(link.close() for link in self._links.values()), return_exceptions=True)
        self._links.clear()
