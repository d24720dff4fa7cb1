"""The ingress's size limits and slow-client defences, enforced at the edge before a container is
touched: 413 for bodies, 431 for heads, a deadline for heads, 1009 for WebSocket messages, and
memory that stays flat while a large body streams through every process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import websockets

from tests.conftest import Cluster, body_chunks, descendants, running_cluster, split_url, wait_until

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
TIGHT_BODY = 1 * MIB
TIGHT_HEADERS = 8 * KIB
HEADER_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster with small limits, set through the daemons' environment."""
    with running_cluster(
        tmp_path_factory.mktemp("tight"),
        STOKER_MAX_BODY_BYTES=str(TIGHT_BODY),
        STOKER_MAX_HEADER_BYTES=str(TIGHT_HEADERS),
        STOKER_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
    ) as c:
        yield c


@pytest.fixture(scope="module")
def urls(shared_cluster: Cluster) -> dict[str, str]:
    return shared_cluster.deploy("limits.py")


@pytest.fixture(scope="module")
def tight_urls(tight: Cluster) -> dict[str, str]:
    return tight.deploy("limits.py")


def _chunked(total: int, size: int = 64 * KIB) -> Iterator[bytes]:
    """A body in HTTP/1.1 chunked encoding, terminator included."""
    for piece in body_chunks(total, size):
        yield b"%x\r\n%s\r\n" % (len(piece), piece)
    yield b"0\r\n\r\n"


def _head(url: str, method: str, path: str, *headers: str) -> bytes:
    _, host = split_url(url)
    return "\r\n".join([f"{method} {path} HTTP/1.1", f"host: {host}", *headers, "", ""]).encode()


def _exchange(port: int, parts: Iterable[bytes], pause: float = 0.0) -> bytes:
    """Send `parts` (pausing between them) while reading, until the server closes; what it sent.

    Like curl and httpx, it goes on reading when a write fails: a server that refuses a request
    may close before the client has sent it all."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(30)
    closed = threading.Event()

    def write() -> None:
        try:
            for part in parts:
                sock.sendall(part)
                if pause and closed.wait(pause):
                    return
        except OSError:
            pass  # the server closed while we were still sending

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    finally:
        closed.set()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # unblocks a write in progress
        writer.join()
        sock.close()
    return received


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def _containers(cluster: Cluster, function: str) -> list[str]:
    status = cluster.status()
    return [c.container_id for c in status.containers if c.app_name == "edge-limits" and c.function == function]


# ---------------------------------------------------------------- bodies: 413


def test_oversized_content_length_refused_before_placement(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    url = urls["untouched"]
    assert _containers(shared_cluster, "untouched") == []
    # The head declares 4 GiB + 1; the body never needs to come.
    head = _head(url, "POST", "/", f"content-length: {4 * GIB + 1}")
    response = _exchange(shared_cluster.http_port, [head, b"x" * 1000])
    assert _status(response) == 413
    assert b"connection: close" in response.lower()
    assert b"at most 4 GiB" in response
    assert _containers(shared_cluster, "untouched") == []
    assert all(f.queued == 0 for f in shared_cluster.status().functions)
    # The same endpoint with an acceptable request does start a container: the check above means something.
    assert shared_cluster.get(url).text == "reached"
    assert len(_containers(shared_cluster, "untouched")) == 1


def test_body_at_the_limit_passes(tight: Cluster, tight_urls: dict[str, str]) -> None:
    url = tight_urls["edge"]
    assert tight.post(url, "/count", content=body_chunks(TIGHT_BODY, 64 * KIB)).text == str(TIGHT_BODY)
    assert tight.post(url, "/count", content=b"x" * TIGHT_BODY).text == str(TIGHT_BODY)
    assert tight.get(url, "/last").text == "http.request"


def test_content_length_over_a_lowered_limit(tight: Cluster, tight_urls: dict[str, str]) -> None:
    response = tight.post(tight_urls["edge"], "/count", content=b"x" * (TIGHT_BODY + 1))
    assert response.status_code == 413
    assert "at most 1 MiB" in response.text


def test_chunked_body_past_the_limit_is_cut_off_with_413(tight: Cluster, tight_urls: dict[str, str]) -> None:
    url = tight_urls["edge"]
    response = tight.post(url, "/count", content=body_chunks(TIGHT_BODY + 1, 64 * KIB))
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/plain")
    assert "Request body too large" in response.text and "at most 1 MiB" in response.text
    # The app saw the client go away instead of the bytes past the limit.
    assert wait_until(lambda: tight.get(url, "/last").text == "http.disconnect", 10)


@pytest.mark.parametrize("after", [0.01, 0.5])
def test_a_client_that_leaves_before_the_response_is_heard_of(
    tight: Cluster, tight_urls: dict[str, str], after: float
) -> None:
    # A GET's client is watched for a disconnect only once its response has taken 50 ms
    # (ingress/container_link.py); whether it leaves before or after that, the app hears of it.
    url = tight_urls["edge"]
    assert tight.get(url, "/count").text == "0"  # resets /last
    base, host = split_url(url)
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(f"GET /wait HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        time.sleep(after)
    assert wait_until(lambda: tight.get(url, "/last").text == "waited for http.disconnect", 10)


def test_chunked_body_past_the_limit_after_the_response_started_aborts(
    tight: Cluster, tight_urls: dict[str, str]
) -> None:
    url = tight_urls["edge"]
    with socket.create_connection(("127.0.0.1", tight.http_port)) as sock:
        sock.settimeout(10)
        sock.sendall(_head(url, "POST", "/early", "transfer-encoding: chunked") + b"1\r\nu\r\n")
        received = b""
        while b"\r\n\r\n" not in received:  # the body goes on only once the response has started
            received += sock.recv(65536)
        assert _status(received) == 200
        with contextlib.suppress(OSError):
            for chunk in _chunked(4 * TIGHT_BODY):
                sock.sendall(chunk)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    assert not received.endswith(b"0\r\n\r\n")  # no last chunk: the client can tell it was cut
    assert wait_until(lambda: tight.get(url, "/last").text == "http.disconnect", 10)


# ---------------------------------------------------------------- heads: 431


def test_headers_up_to_the_limit_pass_and_over_it_get_431(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    url = urls["edge"]
    assert shared_cluster.get(url, "/count", headers={"x-big": "a" * (60 * KIB)}).status_code == 200
    response = shared_cluster.get(url, "/count", headers={"x-big": "a" * (64 * KIB)})
    assert response.status_code == 431
    assert "Request headers too large" in response.text and "at most 64 KiB" in response.text
    assert response.headers["connection"] == "close"


def test_a_head_that_never_ends_is_refused_without_being_kept(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    # httptools alone would grow this one header value in memory for as long as it comes.
    head = _head(urls["edge"], "GET", "/count").removesuffix(b"\r\n") + b"x-endless: "
    response = _exchange(shared_cluster.http_port, [head, *body_chunks(16 * MIB, 16 * KIB)])
    assert _status(response) == 431
    assert b"at most 64 KiB" in response


async def _refused_handshake(url: str, port: int, headers: list[tuple[str, str]]) -> tuple[int, bytes]:
    ws_url = url.replace("http://", "ws://") + "/ws"
    try:
        async with websockets.connect(ws_url, host="127.0.0.1", port=port, additional_headers=headers, open_timeout=10):
            pass
    except websockets.InvalidStatus as refused:
        return refused.response.status_code, refused.response.body
    raise AssertionError("the WebSocket handshake was accepted")


def test_header_limit_is_configurable_and_covers_websockets(tight: Cluster, tight_urls: dict[str, str]) -> None:
    url = tight_urls["edge"]
    response = tight.get(url, "/count", headers={"cookie": "c" * TIGHT_HEADERS})
    assert response.status_code == 431
    assert "at most 8 KiB" in response.text
    status, body = asyncio.run(_refused_handshake(url, tight.http_port, [("x-a", "a" * 5000), ("x-b", "b" * 5000)]))
    assert status == 431
    assert b"at most 8 KiB" in body


def test_websocket_header_line_over_the_library_limit_is_answered(
    shared_cluster: Cluster, urls: dict[str, str]
) -> None:
    # Within the edge's 64 KiB, but one line past the `websockets` library's own 8 KiB: its 431,
    # which uvicorn's sans-I/O protocol alone would leave unsent, the connection open for good.
    status, body = asyncio.run(_refused_handshake(urls["edge"], shared_cluster.http_port, [("x-a", "a" * 9000)]))
    assert status == 431
    assert b"no more than 8192 bytes" in body


# ---------------------------------------------------------------- slow clients


def _dripped(port: int, data: bytes, pause: float) -> tuple[bytes, int]:
    """Send `data` a byte at a time, pausing between bytes; what the server sent, and how many
    bytes had gone out when it closed the connection."""
    sent = 0

    def drip() -> Iterator[bytes]:
        nonlocal sent
        for byte in data:
            sent += 1
            yield bytes([byte])

    response = _exchange(port, drip(), pause)
    return response, sent


def _two_requests_idle_between(port: int, url: str, idle: float) -> list[int]:
    codes = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        for _ in range(2):
            sock.sendall(_head(url, "GET", "/count"))
            response = b""
            while not response.endswith(b"\r\n0\r\n\r\n"):  # the last chunk
                chunk = sock.recv(65536)
                assert chunk, response
                response += chunk
            codes.append(_status(response))
            time.sleep(idle)
    return codes


def test_slow_heads_are_timed_out_while_normal_requests_flow(tight: Cluster, tight_urls: dict[str, str]) -> None:
    url = tight_urls["edge"]
    port = tight.http_port
    endless = _head(url, "GET", "/count").removesuffix(b"\r\n") + b"x-slow: " + b"s" * 1000
    head = _head(url, "GET", "/count")
    with ThreadPoolExecutor(16) as pool:
        # Slowloris: a byte every 0.1 s, a head that would take minutes.
        slow = [pool.submit(_dripped, port, endless, 0.1) for _ in range(10)]
        silent = pool.submit(_exchange, port, [])  # a connection that never sends a byte
        # A head in pieces, whole within the deadline; then a second request on the connection.
        pieces = [head[:20], head[20:40], head[40:], _head(url, "GET", "/count", "connection: close")]
        in_time = pool.submit(_exchange, port, pieces, 0.3)
        # The deadline runs from a request's first byte, not from the previous response.
        kept = pool.submit(_two_requests_idle_between, port, url, HEADER_TIMEOUT + 0.5)
        codes = []
        while not all(f.done() for f in [*slow, silent, in_time, kept]):
            codes.append(tight.post(url, "/count", content=b"n" * 1000).status_code)
            time.sleep(0.05)
    for future in slow:
        response, sent = future.result()
        assert _status(response) == 408
        assert b"must arrive within 1.5 s" in response
        assert sent < len(endless)  # closed by the server while the drip was still going
    assert silent.result() == b""  # closed without a word: it never asked anything
    assert in_time.result().count(b"HTTP/1.1 200") == 2
    assert kept.result() == [200, 200]
    assert len(codes) >= 10 and set(codes) == {200}


# ---------------------------------------------------------------- WebSocket messages: 1009


def test_websocket_message_limit(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    ws_url = urls["edge"].replace("http://", "ws://") + "/ws"

    async def talk() -> tuple[int, int | None]:
        async with websockets.connect(ws_url, host="127.0.0.1", port=shared_cluster.http_port, max_size=16 * MIB) as ws:
            await ws.send(b"m" * (2 * MIB))
            echoed = len(await ws.recv())
            await ws.send(b"m" * (2 * MIB + 1))
            try:
                await ws.recv()
            except websockets.ConnectionClosed as closed:
                return echoed, closed.rcvd.code if closed.rcvd else None
        raise AssertionError("a message over the limit was accepted")

    echoed, code = asyncio.run(talk())
    assert echoed == 2 * MIB
    assert code == 1009


# ---------------------------------------------------------------- memory


def _role(pid: int, pids: set[int]) -> str | None:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return None
    if "worker.runtime" in args:
        return "container"
    if "worker.runtime.template" in args:
        # The fork template's children are containers; the template itself is not.
        return "container" if ppid in pids and _is_template(ppid) else None
    if "client" in args and len(args) > args.index("client") + 1:
        command = args[args.index("client") + 1]
        if command in ("scheduler", "worker", "ingress"):
            return command
    return None


def _is_template(pid: int) -> bool:
    try:
        return "worker.runtime.template" in Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return False


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KIB
    return 0


def test_a_1_gib_upload_keeps_every_process_flat(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    url = urls["edge"]
    # Warm up: the container exists and every buffer on the path has been used once.
    assert shared_cluster.post(url, "/count", content=body_chunks(32 * MIB)).text == str(32 * MIB)
    assert shared_cluster.process is not None
    pids = descendants(shared_cluster.process.pid)
    roles = {pid: role for pid in pids if (role := _role(pid, pids)) is not None}
    assert sorted(set(roles.values())) == ["container", "ingress", "scheduler", "worker"], roles
    baseline = {pid: _rss(pid) for pid in roles}
    peak = dict(baseline)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            for pid in roles:
                try:
                    peak[pid] = max(peak[pid], _rss(pid))
                except OSError:
                    pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        response = shared_cluster.post(url, "/count", content=body_chunks(GIB))
    finally:
        done.set()
        sampler.join()
    assert response.status_code == 200
    assert response.text == str(GIB)
    growth = {f"{roles[pid]} {pid}": (peak[pid] - baseline[pid]) // MIB for pid in roles}
    assert all(mib < 64 for mib in growth.values()), growth
