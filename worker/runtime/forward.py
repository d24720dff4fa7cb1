"""An ASGI app that forwards HTTP and WebSocket connections to a server on a local port.

It serves `@web_server` functions. Bodies and messages stream both ways as they arrive; nothing is
buffered whole. The client is aiohttp: forwarding a request costs several times less CPU than with
httpx (bench/forwarding_client.py), and it speaks WebSocket too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from yarl import URL

from protos.asgi import plain_response
from worker.runtime.forward_headers import WEBSOCKET_DROPPED, response_headers, upstream_headers
from worker.runtime.web import Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# Close codes that may not be sent in a close frame (RFC 6455 7.4.1): what replaces each.
_UNSENDABLE_CLOSE = {1005: 1000, 1006: 1011, 1015: 1011}


def sendable_close_code(code: int | None) -> int:
    if code is None:
        return 1000
    return _UNSENDABLE_CLOSE.get(code, code)


class Forwarder:
    """Forwards every connection to 127.0.0.1:`port`, through one keep-alive connection pool."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._session: aiohttp.ClientSession | None = None

    def _pool(self) -> aiohttp.ClientSession:
        # Created on first use: the app is built before the container's event loop runs.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),  # @concurrent bounds it
                auto_decompress=False,  # bytes pass through as the server encoded them
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._session

    def _url(self, scheme: str, scope: Scope) -> URL:
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        target = path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        return URL(f"{scheme}://127.0.0.1:{self.port}{target}", encoded=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._session is not None:
                    await self._session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ------------------------------------------------------------------ HTTP

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        if first["type"] == "http.disconnect":
            return
        body = _RequestBody(first, receive)
        relay = asyncio.create_task(self._relay(scope, body, send), name="forward-http")
        watch = asyncio.create_task(body.wait_disconnect(), name="forward-http-disconnect")
        try:
            # The caller leaving mid-response stops the relay, and with it the server's response.
            await asyncio.wait({relay, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (relay, watch):
                task.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        if relay.done() and not relay.cancelled():
            relay.result()
        else:
            with contextlib.suppress(asyncio.CancelledError):
                await relay

    async def _relay(self, scope: Scope, body: _RequestBody, send: Send) -> None:
        started = False
        try:
            async with self._pool().request(
                scope["method"],
                self._url("http", scope),
                headers=upstream_headers(scope),
                data=body.payload(),
                allow_redirects=False,
            ) as response:
                await send(
                    {
                        "type": "http.response.start",
                        "status": response.status,
                        "headers": response_headers(response.raw_headers),
                    }
                )
                started = True
                async for chunk in response.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except aiohttp.ClientError as exc:
            if started:
                raise  # the response is cut off; the ingress ends it
            log.warning(
                "the web server on port %d did not answer %s %s: %r", self.port, scope["method"], scope["path"], exc
            )
            message = f"Bad Gateway: the web server on port {self.port} did not answer: {exc}"
            await plain_response(scope, send, 502, message)

    # ------------------------------------------------------------------ WebSocket

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        connect = await receive()
        if connect["type"] != "websocket.connect":
            return
        try:
            ws = await self._pool().ws_connect(
                self._url("ws", scope),
                headers=upstream_headers(scope, WEBSOCKET_DROPPED),
                protocols=tuple(scope.get("subprotocols") or ()),
                autoclose=False,  # close codes are relayed, not answered here
                autoping=True,
                max_msg_size=0,  # the ingress enforces the message limit
            )
        except aiohttp.WSServerHandshakeError as exc:
            log.warning(
                "the web server on port %d refused the WebSocket on %s: %s", self.port, scope["path"], exc.status
            )
            await send({"type": "websocket.close", "code": 1008, "reason": f"the server answered {exc.status}"})
            return
        except aiohttp.ClientError as exc:
            log.warning("the web server on port %d did not answer a WebSocket: %r", self.port, exc)
            await send({"type": "websocket.close", "code": 1011, "reason": "the web server did not answer"})
            return
        try:
            await send({"type": "websocket.accept", "subprotocol": ws.protocol})
            await _websocket_session(ws, receive, send)
        finally:
            await ws.close()


async def _websocket_session(ws: aiohttp.ClientWebSocketResponse, receive: Receive, send: Send) -> None:
    """Relay messages both ways until one side closes; carry its close code to the other."""
    to_server = asyncio.create_task(_client_to_server(ws, receive), name="ws-client-to-server")
    to_client = asyncio.create_task(_server_to_client(ws, send), name="ws-server-to-client")
    try:
        done, _ = await asyncio.wait({to_server, to_client}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (to_server, to_client):
            task.cancel()
        await asyncio.gather(to_server, to_client, return_exceptions=True)
    if to_server in done and not to_server.cancelled() and to_server.exception() is None:
        code = to_server.result()
        if code is not None:  # the caller closed: pass its code on
            await ws.close(code=sendable_close_code(code))


async def _client_to_server(ws: aiohttp.ClientWebSocketResponse, receive: Receive) -> int | None:
    """Until the caller disconnects; returns its close code."""
    while True:
        message = await receive()
        if message["type"] == "websocket.receive":
            if message.get("text") is not None:
                await ws.send_str(message["text"])
            else:
                await ws.send_bytes(message.get("bytes") or b"")
        elif message["type"] == "websocket.disconnect":
            return int(message.get("code") or 1005)


async def _server_to_client(ws: aiohttp.ClientWebSocketResponse, send: Send) -> None:
    """Until the server closes; then close the caller's side with the server's code and reason."""
    reason = ""
    while True:  # not `async for`: it ends before yielding the close frame, whose reason we relay
        msg = await ws.receive()
        if msg.type == aiohttp.WSMsgType.TEXT:
            await send({"type": "websocket.send", "text": msg.data})
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await send({"type": "websocket.send", "bytes": msg.data})
        elif msg.type == aiohttp.WSMsgType.CLOSE:
            reason = msg.extra or ""
            await ws.close(code=sendable_close_code(msg.data))  # answer the server's close frame
            break
        else:  # ERROR, CLOSING, CLOSED
            break
    await send({"type": "websocket.close", "code": sendable_close_code(ws.close_code), "reason": reason})


class _RequestBody:
    """The caller's request body as an upload stream, then a watch for the caller leaving."""

    def __init__(self, first: Message, receive: Receive) -> None:
        self.first = first
        self.receive = receive
        self.done = asyncio.Event()

    def payload(self) -> bytes | AsyncIterator[bytes] | None:
        if self.first.get("more_body"):
            return self._chunks()
        self.done.set()
        return bytes(self.first.get("body", b"")) or None

    async def _chunks(self) -> AsyncIterator[bytes]:
        message = self.first
        while True:
            if message.get("body"):
                yield bytes(message["body"])
            if not message.get("more_body"):
                break
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ConnectionAbortedError("the caller left before its request body ended")
        self.done.set()

    async def wait_disconnect(self) -> None:
        await self.done.wait()
        while (await self.receive())["type"] != "http.disconnect":
            pass
