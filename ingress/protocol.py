"""uvicorn's protocols, with the defences they lack against slow and bloated request heads.

httptools accepts a head of any size, growing one header value in memory for as long as a client
sends it, and uvicorn gives a connection no deadline for its head. Here a head must arrive whole
within `timeout` seconds of a connection opening or of its request's first byte (408 and close
otherwise), and a head still unfinished past `max_bytes` is refused (431 and close). A finished head
over the limit goes on to the Limits middleware, which answers 431 the same way. The WebSocket
protocol is uvicorn's sans-I/O one, made to answer the handshakes `websockets` refuses."""

from __future__ import annotations

import asyncio
import http
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from ingress.limits import MAX_HEADER_BYTES, headers_too_large

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 10.0


@dataclass(frozen=True)
class HeadLimits:
    timeout: float = HEADER_TIMEOUT  # seconds for a whole request head
    max_bytes: int = MAX_HEADER_BYTES


def edge_protocol(limits: HeadLimits) -> type[asyncio.Protocol]:
    """The protocol class for uvicorn.Config(http=...), bound to these limits."""

    class Bound(EdgeProtocol):
        head_limits = limits

    return Bound


def raw_response(status: int, message: str) -> bytes:
    """A whole plain-text response, for when no ASGI cycle exists to write one."""
    body = (message + "\n").encode()
    return b"".join(
        [
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode(),
            b"content-type: text/plain; charset=utf-8\r\n",
            f"content-length: {len(body)}\r\n".encode(),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class EdgeProtocol(HttpToolsProtocol):
    head_limits: ClassVar[HeadLimits] = HeadLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_open = False  # a request's first byte arrived, its headers have not ended
        self._message_open = False  # from a request's first byte to its body's last
        self._message_ended = False  # a request ended during the current data_received()
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a whole head is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # A chunk that starts a head or continues one is all head while that head stays open; a
        # chunk that ends one request and starts the next is not counted (so a bound, not exact).
        counted = self._head_open or not self._message_open
        self._message_ended = False
        super().data_received(data)
        if not (self._head_open and counted and not self._message_ended) or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > self.head_limits.max_bytes:
            log.info("request head from %s passed %d bytes; refused", self.client, self.head_limits.max_bytes)
            self._refuse(431, headers_too_large(self.head_limits.max_bytes))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = self._message_open = True
        self._head_bytes = 0
        if self._head_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._message_open = False
        self._message_ended = True
        super().on_message_complete()

    def _arm(self) -> None:
        self._head_timer = self.loop.call_later(self.head_limits.timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if not self._head_open:
            self.transport.close()  # nothing was sent: nobody to tell
            return
        log.info("request head from %s not whole after %g s; closed", self.client, self.head_limits.timeout)
        message = (
            f"Request timeout: the request headers must arrive within {self.head_limits.timeout:g} s. "
            "Check the network, or send the headers at once."
        )
        self._refuse(408, message)

    def _refuse(self, status: int, message: str) -> None:
        self._disarm()
        self.transport.write(raw_response(status, message))
        self.transport.close()


class EdgeWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, which leaves a handshake that `websockets` refuses
    itself (a header line over 8 KiB or more than 128 headers: 431; a malformed request) unanswered
    and the connection open for good: here the refusal is sent and the connection closed."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.handshake_exc is not None and not self.handshake_complete and not self.transport.is_closing():
            log.info("WebSocket handshake from %s refused: %s", self.client, self.conn.handshake_exc)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()
