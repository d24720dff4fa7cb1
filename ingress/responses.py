"""Responses the ingress writes itself: errors a user can read and act on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


async def plain_response(
    scope: dict[str, Any], send: Any, status: int, message: str, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A short text response; for a WebSocket, a denial response or a close with a reason."""
    body = (message + "\n").encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *extra_headers,
    ]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1011 if status >= 500 else 1008, "reason": message[:120]})
