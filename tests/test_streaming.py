"""The request path carries bodies in chunks both ways, and WebSocket messages, through every
process: large uploads and downloads with bounded memory, text and binary frames, close codes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import websockets

from tests.conftest import Cluster, split_url

MIB = 1024 * 1024
UPLOAD = 256 * MIB


def _chunks(total: int, size: int = MIB) -> Iterator[bytes]:
    block = b"u" * size
    sent = 0
    while sent < total:
        piece = block[: total - sent]
        sent += len(piece)
        yield piece


def test_large_upload_is_streamed_not_buffered(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("streams.py")["raw"]
    response = shared_cluster.post(url, "/count", content=_chunks(UPLOAD))
    assert response.status_code == 200
    result = response.json()
    assert result["bytes"] == UPLOAD
    # Credit-based flow control keeps the container far below the body's size.
    assert result["peak_kib"] * 1024 < UPLOAD / 2


def test_large_download_arrives_whole(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("streams.py")["raw"]
    base, host = split_url(url)
    received = 0
    with shared_cluster.client.stream("GET", f"{base}/download?size={UPLOAD}", headers={"host": host}) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            assert set(chunk) <= {ord("x")}
            received += len(chunk)
    assert received == UPLOAD


def test_websocket_echo_text_binary_and_close_code(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("streams.py")["raw"]

    async def talk() -> tuple[object, object, int | None, str]:
        # The URL names the endpoint (and so the Host header); the socket goes to loopback.
        ws_url = url.replace("http://", "ws://") + "/ws"
        async with websockets.connect(ws_url, host="127.0.0.1", port=shared_cluster.http_port) as ws:
            await ws.send("hello")
            text = await ws.recv()
            await ws.send(b"\x00\x01binary")
            data = await ws.recv()
            await ws.send("close")
            try:
                await ws.recv()
            except websockets.ConnectionClosed as closed:
                return text, data, closed.rcvd.code if closed.rcvd else None, closed.rcvd.reason if closed.rcvd else ""
        raise AssertionError("the server did not close")

    text, data, code, reason = asyncio.run(talk())
    assert text == "hello"
    assert data == b"\x00\x01binary"
    assert code == 4001
    assert reason == "asked to"
