"""One long-lived, multiplexed Exchange stream per container, shared by all its requests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from protos import stoker_pb2 as pb
from protos.asgi import (
    DISCONNECT_TYPES,
    WINDOW,
    event_from_proto,
    event_to_proto,
    needs_credit,
    plain_response,
    scope_to_proto,
)
from protos.exchange_link import ExchangeLink, ExchangeLinks

_STARTING_TYPES = frozenset(
    {"http.response.start", "websocket.accept", "websocket.close", "websocket.http.response.start"}
)

Receive = Any
Send = Any


class ContainerUnreachable(Exception):
    """The stream broke before the container said hello: the request reached no app, so it may be
    placed again, replaying the messages already read from the client."""

    def __init__(self, consumed: list[dict[str, Any]]) -> None:
        super().__init__("the container could not be reached")
        self.consumed = consumed


class ContainerLink(ExchangeLink):
    """The ingress's stream to one container, carrying every HTTP request and WebSocket it places there."""

    async def proxy(
        self, request_id: int, scope: dict[str, Any], receive: Receive, send: Send, complete: Callable[[], None]
    ) -> None:
        """Carry one ASGI connection to the container and its answer back, chunk by chunk.

        `complete()` is called as the last chunk of an HTTP response goes out, before the client
        can have it: a client's next request must find this one's slot already free."""
        inbox = self.open(request_id)
        window = asyncio.Semaphore(WINDOW)
        consumed: list[dict[str, Any]] = []
        answered = asyncio.Event()  # the whole HTTP response went to the client
        # The pump is scheduled before the outbox's writer wakes for the scope, so a request body
        # that is already here (a GET's empty one) goes out in the same message as the scope.
        pump = asyncio.create_task(
            self._pump(request_id, receive, window, consumed, answered), name=f"pump-{request_id}"
        )
        self._outbox.put_nowait(pb.RequestFrame(id=request_id, scope=scope_to_proto(scope)))
        started = False
        try:
            while True:
                frame = await inbox.get()
                if frame is None:
                    if not self.reached:
                        raise ContainerUnreachable(consumed)
                    await self._lost(scope, send, started)
                    return
                kind = frame.WhichOneof("kind")
                if kind == "event":
                    message = event_from_proto(frame.event)
                    if frame.event.type in _STARTING_TYPES:
                        started = True
                    elif frame.event.type == "http.response.body" and not frame.event.more_body:
                        answered.set()
                        complete()
                    await send(message)
                    if needs_credit(frame.event.type, frame.event.more_body):
                        self._outbox.put_nowait(pb.RequestFrame(id=request_id, credit=1))
                elif kind == "credit":
                    for _ in range(frame.credit):
                        window.release()
                elif kind == "done":
                    if frame.done and started and not answered.is_set():
                        # The app failed mid-response: cut the connection so the client sees it.
                        raise ConnectionAbortedError(f"the web function failed mid-response: {frame.done}")
                    return
        finally:
            pump.cancel()
            self.close_id(request_id)

    async def _pump(
        self,
        request_id: int,
        receive: Receive,
        window: asyncio.Semaphore,
        consumed: list[dict[str, Any]],
        answered: asyncio.Event,
    ) -> None:
        """Request body chunks and WebSocket messages to the container, within the credit window.

        Until the container is known to be there, what is read is also kept in `consumed`, for a
        retry elsewhere; at most WINDOW body chunks, since no credit comes back before that."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect" and answered.is_set():
                # uvicorn says "disconnect" once a response is complete: the app has nothing to
                # learn from it, and skipping it saves a frame per request.
                return
            if not self.reached:
                consumed.append(message)
            event = event_to_proto(message)
            if needs_credit(event.type, event.more_body):
                await window.acquire()
            self._outbox.put_nowait(pb.RequestFrame(id=request_id, event=event))
            if event.type in DISCONNECT_TYPES:
                return

    async def _lost(self, scope: dict[str, Any], send: Send, started: bool) -> None:
        if started:
            raise ConnectionAbortedError("the container stopped while answering")
        message = "the container serving this endpoint stopped while handling the request; retry"
        await plain_response(scope, send, 502, message)


class ContainerLinks(ExchangeLinks[ContainerLink]):
    def __init__(self) -> None:
        super().__init__(ContainerLink)
