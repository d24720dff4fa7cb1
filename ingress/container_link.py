"""One long-lived, multiplexed Exchange stream per container, shared by all its requests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from protos import stoker_pb2 as pb
from protos.asgi import (
    DISCONNECT_TYPES,
    CreditsOwed,
    SendWindow,
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

# Seconds a request whose body is all here waits for its response before the client's connection
# is watched for a disconnect (which the app then hears of): most responses come sooner.
DISCONNECT_WATCH_AFTER = 0.05


class ContainerUnreachable(Exception):
    """The stream broke before the container said hello: the request reached no app, so it may be
    placed again, replaying the messages already read from the client."""

    def __init__(self, consumed: list[dict[str, Any]]) -> None:
        super().__init__("the container could not be reached")
        self.consumed = consumed


def _bodiless(headers: list[tuple[bytes, bytes]]) -> bool:
    """No body follows this request head: no Transfer-Encoding, no Content-Length but 0."""
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return False
    return True


def _disconnect_frame(request_id: int, scope_type: str) -> pb.RequestFrame:
    """The ASGI disconnect event that tells an app still at work that its client is gone."""
    if scope_type == "websocket":
        return pb.RequestFrame(id=request_id, event=pb.AsgiEvent(type="websocket.disconnect", code=1006))
    return pb.RequestFrame(id=request_id, event=pb.AsgiEvent(type="http.disconnect"))


class _ProxiedRequest:
    """What the two halves of one proxied request (or WebSocket) share: one small object per
    request, where an Event and a Semaphore would each cost their own construction."""

    __slots__ = ("answered", "consumed", "pump", "watch", "window")

    def __init__(self) -> None:
        self.answered = False  # the whole HTTP response went to the client
        self.consumed: list[dict[str, Any]] = []  # read from the client before the container was reached
        self.window: SendWindow | None = None  # made at the first request chunk that takes a credit
        self.pump: asyncio.Task[None] | None = None  # reads the client: body chunks, messages, disconnect
        self.watch: asyncio.TimerHandle | None = None  # starts the pump if a response takes a while

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.cancel()
        if self.pump is not None:
            self.pump.cancel()


class ContainerLink(ExchangeLink):
    """The ingress's stream to one container, carrying every HTTP request and WebSocket it places there."""

    async def proxy(
        self,
        request_id: int,
        scope: dict[str, Any],
        receive: Receive,
        send: Send,
        complete: Callable[[], None],
        method_name: str = "",
        retiring: Callable[[], None] | None = None,
    ) -> None:
        """Carry one ASGI connection to the container and its answer back, chunk by chunk.

        `complete()` is called as the last chunk of an HTTP response goes out, before the client
        can have it: a client's next request must find this one's slot already free. `method_name`
        names the class's web method the request is for ("" for a function's endpoint).
        `retiring()` is called when the container says it takes no new inputs (before `complete`)."""
        inbox = self.open(request_id)
        request = _ProxiedRequest()
        opening = scope_to_proto(scope)
        if method_name:
            opening.method_name = method_name
        self._outbox.put_nowait(pb.RequestFrame(id=request_id, scope=opening))
        started = False
        ended = False  # the container said it is done, or its stream is gone
        owed: CreditsOwed | None = None  # made at the first response chunk that takes a credit
        try:
            # A request without a body (a GET) has it "read" at once: it goes out in the same
            # message as the scope, and nothing is left to read but a disconnect. Only a response
            # that takes a while needs that watched, so the pump, a task per request, starts then.
            first = await receive() if scope["type"] == "http" and _bodiless(scope["headers"]) else None
            if first is not None and first["type"] == "http.request" and not first.get("more_body", False):
                self._forward(request_id, first, request)
                request.watch = asyncio.get_running_loop().call_later(
                    DISCONNECT_WATCH_AFTER, self._start_pump, request_id, receive, request, None
                )
            else:
                self._start_pump(request_id, receive, request, first)
            while True:
                frame = await inbox.get()
                if frame is None:
                    ended = True
                    if not self.reached:
                        raise ContainerUnreachable(request.consumed)
                    await self._lost(scope, send, started)
                    return
                kind = frame.WhichOneof("kind")
                if kind == "event":
                    event = frame.event
                    if event.type in _STARTING_TYPES:
                        started = True
                    elif event.type == "http.response.body" and not event.more_body:
                        request.answered = True
                        complete()
                    await send(event_from_proto(event))
                    if needs_credit(event.type, event.more_body):
                        if owed is None:
                            owed = CreditsOwed()
                        if due := owed.took(inbox.empty()):
                            self._outbox.put_nowait(pb.RequestFrame(id=request_id, credit=due))
                elif kind == "credit":
                    if request.window is not None:  # no chunk that takes a credit went out, so none comes back
                        request.window.credit(frame.credit)
                elif kind == "retiring":
                    if retiring is not None:
                        retiring()
                elif kind == "done":
                    ended = True
                    failure = frame.done.failure
                    if failure and started and not request.answered:
                        # The app failed mid-response: cut the connection so the client sees it.
                        raise ConnectionAbortedError(f"the web function failed mid-response: {failure}")
                    return
        finally:
            request.stop()
            # Stopping before the app has finished (a send to our client failed), the app is told
            # the client is gone: the pump just stopped may not have told it.
            self.close_id(request_id, None if ended else _disconnect_frame(request_id, scope["type"]))

    def _start_pump(
        self, request_id: int, receive: Receive, request: _ProxiedRequest, first: dict[str, Any] | None
    ) -> None:
        request.watch = None
        request.pump = asyncio.create_task(self._pump(request_id, receive, request, first), name=f"pump-{request_id}")

    async def _pump(
        self, request_id: int, receive: Receive, request: _ProxiedRequest, first: dict[str, Any] | None
    ) -> None:
        """Request body chunks and WebSocket messages to the container, within the credit window,
        starting with `first` when the proxy already read it.

        Until the container is known to be there, what is read is also kept in `consumed`, for a
        retry elsewhere; at most WINDOW body chunks, since no credit comes back before that."""
        message = first
        while True:
            if message is None:
                message = await receive()
            if message["type"] == "http.disconnect" and request.answered:
                # uvicorn says "disconnect" once a response is complete: the app has nothing to
                # learn from it, and skipping it saves a frame per request.
                return
            if not self.reached:
                request.consumed.append(message)
            event = event_to_proto(message)
            if needs_credit(event.type, event.more_body):
                if request.window is None:
                    request.window = SendWindow()
                await request.window.acquire()  # never closed: the ingress stops its pump instead
            self._outbox.put_nowait(pb.RequestFrame(id=request_id, event=event))
            if event.type in DISCONNECT_TYPES:
                return
            message = None

    def _forward(self, request_id: int, message: dict[str, Any], request: _ProxiedRequest) -> None:
        """A whole (last) request body, which takes no credit."""
        if not self.reached:
            request.consumed.append(message)
        self._outbox.put_nowait(pb.RequestFrame(id=request_id, event=event_to_proto(message)))

    async def _lost(self, scope: dict[str, Any], send: Send, started: bool) -> None:
        if started:
            raise ConnectionAbortedError("the container stopped while answering")
        message = "the container serving this endpoint stopped while handling the request; retry"
        await plain_response(scope, send, 502, message)


class ContainerLinks(ExchangeLinks[ContainerLink]):
    def __init__(self) -> None:
        super().__init__(ContainerLink)
