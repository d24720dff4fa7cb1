"""The request path carries bodies in chunks both ways, and WebSocket messages, through every
process: large uploads and downloads with bounded memory, text and binary frames, close codes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import websockets

from tests.conftest import Cluster, body_chunks, split_url, wait_until

MIB = 1024 * 1024
UPLOAD = 256 * MIB


def test_large_upload_is_streamed_not_buffered(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("streams.py")["raw"]
    response = shared_cluster.post(url, "/count", content=body_chunks(UPLOAD))
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


def test_a_client_close_code_reaches_the_app(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("streams.py")["raw"]

    async def close_with(code: int) -> None:
        ws_url = url.replace("http://", "ws://") + "/ws"
        async with websockets.connect(ws_url, host="127.0.0.1", port=shared_cluster.http_port) as ws:
            await ws.send("hi")
            await ws.recv()
            await ws.close(code=code, reason="done here")

    asyncio.run(close_with(4123))
    assert wait_until(lambda: "4123" in shared_cluster.get(url, "/closes").text.split(","), 10)


def test_sse_events_arrive_as_they_are_produced(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("seed_sse.py")["stream"]
    base, host = split_url(url)
    with shared_cluster.client.stream("GET", base, headers={"host": host}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        arrivals = list(response.iter_raw())
    # Produced half a second apart, each event reaches the client on its own: buffered anywhere,
    # they would arrive together.
    assert arrivals == [f"data: event {i}\n\n".encode() for i in range(10)]


def test_a_client_that_disconnects_mid_stream_stops_the_work(shared_cluster: Cluster, shared_tmp: Path) -> None:
    url = shared_cluster.deploy("seed_sse.py")["ticker"]
    progress = shared_tmp / "ticks"
    base, host = split_url(url)
    with shared_cluster.client.stream("GET", base, params={"path": str(progress)}, headers={"host": host}) as response:
        lines = response.iter_lines()
        while not next(lines).startswith("data: tick 3"):
            pass
    # The connection is closed; the generator must stop soon after and stay stopped.
    time.sleep(1.0)
    stopped_at = progress.read_text()
    time.sleep(1.0)
    assert progress.read_text() == stopped_at
    assert int(stopped_at) < 100


def test_a_websocket_client_that_stops_reading_then_leaves_stops_a_blocked_send(
    shared_cluster: Cluster, shared_tmp: Path
) -> None:
    """The app outruns its client until flow control holds its send(); when the client then
    leaves, that waiting send raises (ASGI 2.4) rather than waiting for a credit that never comes."""
    url = shared_cluster.deploy("streams.py")["raw"]
    record = shared_tmp / "firehose"

    async def read_one_then_leave() -> None:
        ws_url = url.replace("http://", "ws://") + f"/firehose?record={record}"
        async with websockets.connect(ws_url, host="127.0.0.1", port=shared_cluster.http_port) as ws:
            await ws.recv()
            await asyncio.sleep(1.5)  # reading nothing: every buffer on the way fills, and the app's send waits
            ws.transport.abort()  # gone, without a goodbye

    asyncio.run(read_one_then_leave())
    assert wait_until(record.exists, timeout=15), "the app's send never learned that the client left"
    assert record.read_text().startswith("stopped after "), record.read_text()


def test_an_http_client_that_stops_reading_then_leaves_stops_the_app(shared_cluster: Cluster, shared_tmp: Path) -> None:
    url = shared_cluster.deploy("streams.py")["raw"]
    record = shared_tmp / "firehose"
    base, host = split_url(url)
    with shared_cluster.client.stream(
        "GET", base + "/firehose", params={"record": str(record)}, headers={"host": host}
    ) as response:
        next(response.iter_raw())
        time.sleep(1.5)  # reading nothing: every buffer on the way fills
    assert wait_until(record.exists, timeout=15), "the app never learned that the client left"
    assert record.read_text().startswith("stopped after "), record.read_text()
