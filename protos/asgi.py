"""ASGI scopes and messages <-> their protobuf form, and flow control.

Both ends of the request path (ingress and container runtime) use this one codec, so it lives
with the contract. Flow control: the sender of a credit-bearing event may have at most WINDOW of
them unacknowledged per request; the receiver sends one credit back for each one it consumes.
This bounds memory per request in every process however large a body is. Every sender keeps a
SendWindow per id and every receiver a CreditsOwed, each made at the id's first credit-bearing
event, so a request that has none (most) builds neither.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from protos import stoker_pb2 as pb

WINDOW = 16  # credit-bearing events in flight per request and direction
# A receiver that has more events waiting returns credits for up to this many at once (one
# frame instead of four), and for all it owes whenever it has caught up.
CREDIT_BATCH = WINDOW // 4

_CREDITED_TYPES = frozenset({"websocket.send", "websocket.receive"})
_BODY_TYPES = frozenset({"http.request", "http.response.body", "websocket.http.response.body"})
DISCONNECT_TYPES = frozenset({"http.disconnect", "websocket.disconnect"})  # the client went away


def credit_due(owed: int, caught_up: bool) -> bool:
    """Whether a receiver that owes `owed` credits returns them now: once it has caught up with
    what arrived, or owes CREDIT_BATCH."""
    return caught_up or owed >= CREDIT_BATCH


def needs_credit(message_type: str, more_body: bool) -> bool:
    """Whether an event of this type takes a credit: every body chunk but the last, every
    WebSocket message. Last chunks need none, so a small request costs no credit frames."""
    return (more_body and message_type in _BODY_TYPES) or message_type in _CREDITED_TYPES


class SendWindow:
    """The sending end of one id: at most WINDOW credit-bearing events unacknowledged. An
    asyncio.Semaphore(WINDOW) that a credit frame releases in bulk, and that close() ends: a
    sender waiting on a receiver that is gone is woken to give up instead of waiting for good."""

    __slots__ = ("_closed", "_free", "_waiters")

    def __init__(self) -> None:
        self._free = WINDOW
        self._waiters: deque[asyncio.Future[None]] | None = None  # made when a sender first waits
        self._closed = False

    async def acquire(self) -> bool:
        """Take a credit, waiting for one if none is free. False: the window is closed (no credit
        will come), and the caller must not send."""
        if self._closed:
            return False
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        if self._waiters is None:
            self._waiters = deque()
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and not self._closed:
                self._free += 1  # handed a credit as it was cancelled: it goes to the next waiter
                self._wake()
            raise
        if self._closed:
            return False
        if self._free > 0:  # a credit came while this waiter was woken but not yet run
            self._wake()
        return True

    def credit(self, count: int) -> None:
        """The receiver consumed `count` more events."""
        self._free += count
        if self._waiters:
            self._wake()

    def close(self) -> None:
        """No credit will come (the receiver is gone): every acquire, waiting or later, returns False."""
        self._closed = True
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def _wake(self) -> None:
        for waiter in self._waiters or ():
            if self._free == 0:
                return
            if not waiter.done():
                self._free -= 1  # the credit is the woken waiter's, whoever acquires before it runs
                waiter.set_result(None)


class CreditsOwed:
    """The receiving end of one id: credits for consumed events that have not gone back yet."""

    __slots__ = ("_owed",)

    def __init__(self) -> None:
        self._owed = 0

    def took(self, caught_up: bool) -> int:
        """One more credit-bearing event was consumed; `caught_up`: no more have arrived. The
        credits to send back now (credit_due), or 0 to wait for more."""
        owed = self._owed + 1
        if credit_due(owed, caught_up):
            self._owed = 0
            return owed
        self._owed = owed
        return 0


def scope_to_proto(scope: Mapping[str, Any]) -> pb.Scope:
    client = scope.get("client") or ("", 0)
    server = scope.get("server") or ("", 0)
    return pb.Scope(
        type=scope["type"],
        http_version=scope.get("http_version", "1.1"),
        method=scope.get("method", ""),
        scheme=scope.get("scheme", "http"),
        path=scope["path"],
        raw_path=scope.get("raw_path") or b"",
        query_string=scope.get("query_string", b""),
        headers=[pb.Header(name=k, value=v) for k, v in scope["headers"]],
        client_host=client[0] or "",
        client_port=client[1] or 0,
        server_host=server[0] or "",
        server_port=server[1] or 0,
        subprotocols=scope.get("subprotocols", ()),
    )


def scope_from_proto(s: pb.Scope) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": s.type,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": s.http_version,
        "scheme": s.scheme,
        "path": s.path,
        "raw_path": s.raw_path or None,
        "query_string": s.query_string,
        "root_path": "",
        "headers": [(h.name, h.value) for h in s.headers],
        "client": (s.client_host, s.client_port) if s.client_host else None,
        "server": (s.server_host, s.server_port) if s.server_host else None,
        "state": {},
    }
    if s.type == "http":
        scope["method"] = s.method
    else:
        scope["subprotocols"] = list(s.subprotocols)
    return scope


def event_to_proto(message: Mapping[str, Any]) -> pb.AsgiEvent:
    t = message["type"]
    if t == "http.response.body" or t == "http.request":
        return pb.AsgiEvent(type=t, body=bytes(message.get("body", b"")), more_body=message.get("more_body", False))
    if t == "http.response.start":
        return pb.AsgiEvent(
            type=t,
            status=message["status"],
            headers=[pb.Header(name=k, value=v) for k, v in message.get("headers", ())],
            trailers=message.get("trailers", False),
        )
    if t == "websocket.send" or t == "websocket.receive":
        text = message.get("text")
        if text is not None:
            return pb.AsgiEvent(type=t, text=text)
        return pb.AsgiEvent(type=t, body=bytes(message.get("bytes") or b""))
    if t == "websocket.accept":
        return pb.AsgiEvent(
            type=t,
            subprotocol=message.get("subprotocol") or "",
            headers=[pb.Header(name=k, value=v) for k, v in message.get("headers", ())],
        )
    if t == "websocket.close":
        return pb.AsgiEvent(type=t, code=message.get("code", 1000), reason=message.get("reason") or "")
    if t == "websocket.disconnect":  # 1005: the peer sent no close code
        return pb.AsgiEvent(type=t, code=message.get("code", 1005), reason=message.get("reason") or "")
    if t == "websocket.http.response.start":
        return pb.AsgiEvent(
            type=t,
            status=message["status"],
            headers=[pb.Header(name=k, value=v) for k, v in message.get("headers", ())],
        )
    if t == "websocket.http.response.body":
        return pb.AsgiEvent(type=t, body=message.get("body", b""), more_body=message.get("more_body", False))
    return pb.AsgiEvent(type=t)  # http.disconnect, websocket.connect


def event_from_proto(e: pb.AsgiEvent) -> dict[str, Any]:
    t = e.type
    if t == "http.response.body" or t == "http.request":
        return {"type": t, "body": e.body, "more_body": e.more_body}
    if t == "http.response.start":
        return {
            "type": t,
            "status": e.status,
            "headers": [(h.name, h.value) for h in e.headers],
            "trailers": e.trailers,
        }
    if t == "websocket.send" or t == "websocket.receive":
        if e.HasField("text"):
            return {"type": t, "text": e.text}
        return {"type": t, "bytes": e.body}
    if t == "websocket.accept":
        return {
            "type": t,
            "subprotocol": e.subprotocol or None,
            "headers": [(h.name, h.value) for h in e.headers],
        }
    if t == "websocket.close" or t == "websocket.disconnect":
        return {"type": t, "code": e.code, "reason": e.reason}
    if t == "websocket.http.response.start":
        return {"type": t, "status": e.status, "headers": [(h.name, h.value) for h in e.headers]}
    if t == "websocket.http.response.body":
        return {"type": t, "body": e.body, "more_body": e.more_body}
    return {"type": t}


async def plain_response(
    scope: Mapping[str, Any], send: Any, status: int, message: str, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A short text response; for a WebSocket, a denial response or a close with a reason."""
    for event in plain_messages(scope, status, message, extra_headers):
        await send(event)


def plain_messages(
    scope: Mapping[str, Any], status: int, message: str, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> list[dict[str, Any]]:
    """The ASGI messages of plain_response."""
    body = (message + "\n").encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *extra_headers,
    ]
    if scope["type"] == "http":
        return [
            {"type": "http.response.start", "status": status, "headers": headers},
            {"type": "http.response.body", "body": body},
        ]
    if "websocket.http.response" in scope.get("extensions", {}):
        return [
            {"type": "websocket.http.response.start", "status": status, "headers": headers},
            {"type": "websocket.http.response.body", "body": body},
        ]
    return [{"type": "websocket.close", "code": 1011 if status >= 500 else 1008, "reason": message[:120]}]
