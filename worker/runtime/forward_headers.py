"""Which headers a forwarding proxy passes on, and the X-Forwarded-* headers it adds."""

from __future__ import annotations

from collections.abc import Iterable

from multidict import CIMultiDict

from worker.runtime.web import Scope

# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection, never forwarded.
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
# The WebSocket client library makes its own handshake with the server.
WEBSOCKET_DROPPED = HOP_BY_HOP | {
    b"sec-websocket-key",
    b"sec-websocket-version",
    b"sec-websocket-extensions",
    b"sec-websocket-protocol",
    b"sec-websocket-accept",
}
# The edge states these itself; a caller's own values would be lies.
_SET_BY_EDGE = frozenset({b"x-forwarded-proto", b"x-forwarded-host"})
_PROTO = {"ws": "http", "wss": "https"}


def _listed_in_connection(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    """Headers that the Connection header names are hop-by-hop too."""
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b",") if token.strip())
    return named


def upstream_headers(scope: Scope, dropped: frozenset[bytes] = HOP_BY_HOP) -> CIMultiDict[str]:
    """The caller's headers (Host included) for the server, with X-Forwarded-For (the caller's
    address appended to any earlier hops), X-Forwarded-Proto and X-Forwarded-Host."""
    raw: list[tuple[bytes, bytes]] = scope["headers"]
    drop = dropped | _listed_in_connection(raw) | _SET_BY_EDGE
    headers: CIMultiDict[str] = CIMultiDict()
    hops: list[str] = []
    host = ""
    for name, value in raw:
        lower = name.lower()
        if lower in drop:
            continue
        text = value.decode("latin-1")
        if lower == b"x-forwarded-for":
            hops.append(text)
            continue
        if lower == b"host":
            host = text
        headers.add(name.decode("latin-1"), text)
    client = scope.get("client")
    if client and client[0]:
        hops.append(client[0])
    if hops:
        headers["X-Forwarded-For"] = ", ".join(hops)
    scheme = scope.get("scheme") or "http"
    headers["X-Forwarded-Proto"] = _PROTO.get(scheme, scheme)
    if host:
        headers["X-Forwarded-Host"] = host
    return headers


def response_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The server's response headers for the caller, hop-by-hop ones dropped."""
    raw = list(raw)
    drop = HOP_BY_HOP | _listed_in_connection(raw)
    return [(name, value) for name, value in raw if name.lower() not in drop]
