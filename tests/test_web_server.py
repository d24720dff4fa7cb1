"""@web_server on a real cluster: the function starts a server, stoker waits for its port and
forwards HTTP and WebSocket traffic to it; and the caller's address reaches the app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.conftest import Cluster, running_cluster, split_url, wait_until


@pytest.fixture(scope="module")
def echo_url(shared_cluster: Cluster) -> str:
    return shared_cluster.deploy("web_servers.py")["echo"]


def _ws_url(url: str, path: str) -> str:
    return url.replace("http://", "ws://") + path


def _headers(seen: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in seen["headers"] if key == name]


def test_seed_http_server_lists_the_root_directory(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("seed_web_server.py")["my_server"]
    response = shared_cluster.get(url)
    assert response.status_code == 200, response.text
    assert "Directory listing for /" in response.text
    assert 'href="etc/"' in response.text


def test_http_is_forwarded_with_method_path_query_headers_and_body(shared_cluster: Cluster, echo_url: str) -> None:
    _, host = split_url(echo_url)
    response = shared_cluster.post(
        echo_url, "/created/a%2Fb?x=1&y=%20z", content=b"k" * 100_000, headers={"x-custom": "kept"}
    )
    assert response.status_code == 201
    assert response.headers["x-backend"] == "echo"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["raw_path"] == "/created/a%2Fb"
    assert seen["query"] == "x=1&y=%20z"
    assert seen["body_bytes"] == 100_000
    assert _headers(seen, "host") == [host]
    assert _headers(seen, "x-custom") == ["kept"]
    assert _headers(seen, "x-forwarded-proto") == ["http"]
    assert _headers(seen, "x-forwarded-host") == [host]


def test_a_chunked_upload_streams_through(shared_cluster: Cluster, echo_url: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b"c" * 65536  # no Content-Length: the body goes chunked, piece by piece

    seen = shared_cluster.post(echo_url, "/upload", content=chunks()).json()
    assert seen["body_bytes"] == 64 * 65536
    assert _headers(seen, "transfer-encoding") == ["chunked"]


def test_x_forwarded_for_is_the_callers_address(shared_cluster: Cluster, echo_url: str) -> None:
    seen = shared_cluster.get(echo_url, "/headers").json()
    assert _headers(seen, "x-forwarded-for") == ["127.0.0.1"]
    # An earlier proxy's hops are kept, the caller's address appended; the edge's own headers win.
    spoofed = {"x-forwarded-for": "203.0.113.7", "x-forwarded-host": "evil.example", "x-forwarded-proto": "https"}
    seen = shared_cluster.get(echo_url, "/headers", headers=spoofed).json()
    assert _headers(seen, "x-forwarded-for") == ["203.0.113.7, 127.0.0.1"]
    assert _headers(seen, "x-forwarded-proto") == ["http"]
    assert _headers(seen, "x-forwarded-host") == [split_url(echo_url)[1]]


def test_a_streamed_response_arrives_in_pieces(shared_cluster: Cluster, echo_url: str) -> None:
    base, host = split_url(echo_url)
    arrivals: list[bytes] = []
    with shared_cluster.client.stream("GET", f"{base}/stream", headers={"host": host}) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            arrivals.append(chunk)
    assert b"".join(arrivals) == b"piece 0\npiece 1\npiece 2\n"
    # The server sleeps between pieces: had anything buffered the whole body, it would come at once.
    assert arrivals[0] == b"piece 0\n"


def test_websocket_echo_text_binary_subprotocol_and_close_codes(shared_cluster: Cluster, echo_url: str) -> None:
    async def talk() -> dict[str, Any]:
        async with websockets.connect(
            _ws_url(echo_url, "/ws"), host="127.0.0.1", port=shared_cluster.http_port, subprotocols=["chat.v2", "chat"]
        ) as ws:  # type: ignore[list-item]
            result: dict[str, Any] = {"subprotocol": ws.subprotocol}
            await ws.send("hello")
            result["text"] = await ws.recv()
            await ws.send(b"\x00\x01binary")
            result["bytes"] = await ws.recv()
            await ws.send("whoami")
            result["whoami"] = json.loads(await ws.recv())
            await ws.send("close")
            try:
                await ws.recv()
            except websockets.ConnectionClosed as closed:
                assert closed.rcvd is not None
                result["server_close"] = (closed.rcvd.code, closed.rcvd.reason)
        # The other way: the caller closes with its own code, and the server sees that code.
        async with websockets.connect(_ws_url(echo_url, "/ws"), host="127.0.0.1", port=shared_cluster.http_port) as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            await ws.close(code=4002, reason="done here")
        return result

    result = asyncio.run(talk())
    assert result["subprotocol"] == "chat.v2"
    assert result["text"] == "hello"
    assert result["bytes"] == b"\x00\x01binary"
    assert result["whoami"]["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert result["server_close"] == (4001, "asked to")
    assert wait_until(
        lambda: shared_cluster.get(echo_url, "/last-close").json()["code"] == 4002, timeout=30, interval=0.1
    ), "the server never saw the caller's close code"


def test_many_websockets_at_once_share_one_container(shared_cluster: Cluster, echo_url: str) -> None:
    async def one(i: int) -> str:
        async with websockets.connect(_ws_url(echo_url, "/ws"), host="127.0.0.1", port=shared_cluster.http_port) as ws:
            await ws.send(f"hello {i}")
            await asyncio.sleep(0.2)  # all open together
            return str(await ws.recv())

    async def many() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(8)))

    assert asyncio.run(many()) == [f"hello {i}" for i in range(8)]


def test_a_port_that_never_opens_fails_with_a_clear_error(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("web_servers.py")["never_listens"]
    response = shared_cluster.get(url)
    assert response.status_code == 503
    assert "port 18432" in response.text
    assert "startup_timeout=1 s" in response.text


def test_seed_client_ip_is_the_callers_address(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("seed_client_ip.py")["get_ip"]
    response = shared_cluster.get(url)
    assert response.status_code == 200
    assert response.json() == "Your IP: 127.0.0.1"


def test_a_websocket_to_a_wsgi_app_is_closed_cleanly(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("seed_wsgi.py")["flask_app"]

    async def attempt() -> int:
        try:
            async with websockets.connect(_ws_url(url, "/echo"), host="127.0.0.1", port=shared_cluster.http_port):
                pass
        except websockets.InvalidStatus as refused:
            return refused.response.status_code
        raise AssertionError("a WSGI app accepted a WebSocket")

    assert asyncio.run(attempt()) == 403
    # The container is unharmed: HTTP still works.
    assert shared_cluster.post(url, "/echo", json={"still": "here"}).json() == {"still": "here"}


def test_workers_on_one_machine_run_one_container_per_port(tmp_path: Path) -> None:
    # Two workers on one machine whose containers share its network (no container networks):
    # one container of a port, the rest queue. (Spreading over machines is tested on the
    # scheduler's model: tests/unit/test_port_placement.py; containers on networks of their own,
    # the default, side by side on one port: tests/test_sandbox_network.py.)
    with running_cluster(tmp_path, workers=2, STOKER_CONTAINER_NETWORK="0") as cluster:
        url = cluster.deploy("web_servers.py")["one_slot"]
        with ThreadPoolExecutor(3) as pool:
            # Three callers, one slot per container: they take turns on the one container.
            responses = list(pool.map(lambda _: cluster.get(url, "/stream"), range(3)))
        assert [r.status_code for r in responses] == [200] * 3
        assert all(r.text == "piece 0\npiece 1\npiece 2\n" for r in responses)
        placed = [c.worker_id for c in cluster.status().containers if c.function == "one_slot"]
        assert len(placed) == 1
        assert cluster.output is not None and "already in use" not in cluster.output.text()


def test_a_server_that_dies_gives_502_saying_so(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("web_servers.py")["mortal"]
    assert shared_cluster.get(url, "/alive").status_code == 200
    dying = shared_cluster.get(url, "/exit")
    assert dying.status_code == 502
    assert "the web server on port 18434 did not answer" in dying.text
    after = shared_cluster.get(url, "/alive")
    assert after.status_code == 502
    assert "port 18434" in after.text
