"""Size limits at the edge: request heads (431) and bodies (413), before a request is placed.

A middleware around the proxy. Bodies are counted as they stream through receive(), never
buffered, so the ingress's memory stays flat whatever the client sends."""

from __future__ import annotations

import logging
from typing import Any

from protos.asgi import plain_response

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024**3
MAX_HEADER_BYTES = 64 * 1024

_CLOSE = [(b"connection", b"close")]  # the rest of an oversized body is not worth reading


class _CutOff(Exception):
    """Stops the app once the body has passed the limit mid-response."""


def describe_size(size: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def headers_too_large(limit: int) -> str:
    return (
        f"Request headers too large: the request line and headers may be at most {describe_size(limit)}. "
        "Send fewer or shorter headers (large cookies are the usual cause)."
    )


def body_too_large(limit: int) -> str:
    return (
        f"Request body too large: web endpoints on this cluster accept at most {describe_size(limit)}. "
        "Send a smaller body, or split the upload into several requests."
    )


def read_head(scope: dict[str, Any]) -> tuple[int, int | None, bool]:
    """In one pass over the headers: the bytes of the request line and header lines as sent (CRLFs
    included), the declared Content-Length, and whether the body is chunked."""
    target = len(scope.get("raw_path") or scope["path"].encode())
    if scope.get("query_string"):
        target += 1 + len(scope["query_string"])
    size = len(scope.get("method", "GET")) + 1 + target + len(" HTTP/1.1\r\n") + 2
    length: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        size += len(name) + len(value) + 4
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                pass  # the HTTP parser has refused malformed ones already
        elif name == b"transfer-encoding":
            chunked = True
    return size, length, chunked


class Limits:
    """ASGI middleware enforcing the head and body limits around `app`."""

    def __init__(self, app: Any, max_body_bytes: int = MAX_BODY_BYTES, max_header_bytes: int = MAX_HEADER_BYTES):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        size, length, chunked = read_head(scope)
        if size > self.max_header_bytes:
            await plain_response(scope, send, 431, headers_too_large(self.max_header_bytes), _CLOSE)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)  # message sizes are uvicorn's ws_max_size
            return
        if length is not None and length > self.max_body_bytes:
            await plain_response(scope, send, 413, body_too_large(self.max_body_bytes), _CLOSE)
            return
        if not chunked:
            # The parser delivers at most Content-Length bytes, and none without it: nothing to count.
            await self.app(scope, receive, send)
            return
        await _CountedBody(scope, self.max_body_bytes, receive, send).run(self.app)


class _CountedBody:
    """One request's body, counted in receive(); cut off with 413, or an abort, past the limit."""

    def __init__(self, scope: dict[str, Any], limit: int, receive: Any, send: Any) -> None:
        self.scope = scope
        self.limit = limit
        self._receive = receive
        self._send = send
        self.received = 0
        self.started = False  # a response start went to the client
        self.complete = False  # ... and its last body chunk
        self.exceeded = False

    async def run(self, app: Any) -> None:
        try:
            await app(self.scope, self.receive, self.send)
        except _CutOff:
            pass
        # Past the limit mid-response, the response stays unfinished, and uvicorn cuts the
        # connection: only that tells the client; a 413 can no longer be sent.

    async def receive(self) -> Any:
        if self.exceeded:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        self.received += len(message.get("body", b""))
        if self.received <= self.limit:
            return message
        # The app sees the client go away, and never the bytes past the limit.
        self.exceeded = True
        log.info("request body passed %s; cut off", describe_size(self.limit))
        if not self.started:
            self.started = self.complete = True
            await plain_response(self.scope, self._send, 413, body_too_large(self.limit), _CLOSE)
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if self.exceeded:
            if self.started and not self.complete:
                raise _CutOff
            return  # the 413 went out in the app's place
        if message["type"] == "http.response.start":
            self.started = True
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True
        await self._send(message)
