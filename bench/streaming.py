"""Streaming: server-sent events' latency, and 1 GiB bodies each way with the daemons' memory.

    python bench/streaming.py [--reps 3] [--mib 1024]

Measures, in one run on this machine, with one raw-socket HTTP/1.1 client (blocking, 1 MiB
reads and writes, a minimal chunked decoder) against the endpoints of bench/apps/stream_app.py:
  SSE         the seed's StreamingResponse example (ten `data: event i` events, 50 ms apart):
              time to the first event, and the gaps between consecutive events against the
              intended 50 ms
  download    GET of a streamed 1 GiB response (64 KiB per `http.response.body`), in MB/s
  upload      POST of a 1 GiB body (Content-Length) that the app reads and counts, in MB/s
each through stoker (`stoker up`, warm container) and, as the baseline, the same ASGI app (built
by the container runtime's own `build_asgi_app`) served directly by uvicorn. While each transfer
runs, the RSS of every daemon (scheduler, worker, ingress) and of the container, or of the
uvicorn server, is sampled from /proc every 50 ms; the tables give its peak growth over its RSS
at the transfer's start. Medians over --reps repetitions; memory growth is the worst of them.
Targets: >= 200 MB/s each way, no daemon growing by more than 64 MiB.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from harness import ROOT, Cluster, free_port, median, stop

from worker.sandbox import host_view

APP = ROOT / "bench" / "apps" / "stream_app.py"
MIB = 1024 * 1024
READ = MIB  # bytes asked of each recv(); writes go out MiB at a time too
IO_TIMEOUT = 30.0  # seconds any single socket read or write may block
TRANSFER_DEADLINE = 300.0  # seconds a whole transfer may take before the benchmark gives up
SAMPLE_EVERY = 0.05
PAGE = os.sysconf("SC_PAGE_SIZE")
INTENDED_GAP = 0.05  # GAP_SECONDS in the app
TARGET_MBPS = 200.0
TARGET_GROWTH_MIB = 64.0

DIRECT_SERVER = """
import sys
from pathlib import Path
import uvicorn
sys.path.insert(0, sys.argv[1])
from client.appfile import find_app, find_function, import_app_file
from worker.runtime.web import build_asgi_app
app = find_app(import_app_file(Path(sys.argv[2])))
uvicorn.run(build_asgi_app(find_function(app, sys.argv[3])), host="127.0.0.1", port=int(sys.argv[4]),
            log_level="error")
"""


# ---------------------------------------------------------------- a minimal HTTP/1.1 client


class Response:
    """One request on a fresh connection; `body()` yields the decoded body as it arrives."""

    def __init__(self, port: int, host: str, method: str, path: str, upload: int = 0) -> None:
        self.began = time.perf_counter()
        self.deadline = self.began + TRANSFER_DEADLINE
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        length = f"content-length: {upload}\r\n" if method == "POST" else ""
        head = f"{method} {path} HTTP/1.1\r\nhost: {host}\r\n{length}connection: close\r\n\r\n"
        self.sock.sendall(head.encode())
        if upload:
            block = memoryview(b"u" * MIB)
            sent = 0
            while sent < upload:
                self._check_deadline()
                piece = block[: min(MIB, upload - sent)]
                self.sock.sendall(piece)
                sent += len(piece)
        self.status, self.headers, self._rest = self._head()

    def _check_deadline(self) -> None:
        if time.perf_counter() > self.deadline:
            raise TimeoutError(f"transfer took over {TRANSFER_DEADLINE:.0f} s")

    def _recv(self) -> bytes:
        self._check_deadline()
        return self.sock.recv(READ)

    def _more(self) -> bytes:
        data = self._recv()
        if not data:
            raise EOFError("the server closed the connection mid-response")
        return data

    def _head(self) -> tuple[int, dict[str, str], bytes]:
        buffer = b""
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            if len(buffer) > 65536:
                raise ValueError("response head too large")
            buffer += self._more()
        lines = buffer[:end].decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(lines[0].split()[1]), headers, buffer[end + 4 :]

    def body(self) -> Iterator[memoryview]:
        if "chunked" in self.headers.get("transfer-encoding", ""):
            yield from self._chunked()
            return
        remaining = int(self.headers.get("content-length", -1))  # -1: until the server closes
        data = self._rest
        while True:
            if data:
                if remaining >= 0:
                    if len(data) > remaining:
                        data = data[:remaining]
                    remaining -= len(data)
                yield memoryview(data)
            if remaining == 0:
                return
            data = self._recv()
            if not data:
                if remaining > 0:
                    raise EOFError("the server closed the connection mid-body")
                return

    def _chunked(self) -> Iterator[memoryview]:
        buffer, at = self._rest, 0
        for _ in range(1 << 40):  # bounded by the transfer deadline in _recv
            while (line_end := buffer.find(b"\r\n", at)) < 0:
                buffer, at = buffer[at:] + self._more(), 0
            size = int(buffer[at:line_end].split(b";")[0], 16)
            at = line_end + 2
            if size == 0:
                return  # trailers, if any, are not read: the connection closes
            while size:
                if at >= len(buffer):
                    buffer, at = self._more(), 0
                take = min(size, len(buffer) - at)
                yield memoryview(buffer)[at : at + take]
                at += take
                size -= take
            while len(buffer) - at < 2:
                buffer, at = buffer[at:] + self._more(), 0
            at += 2

    def close(self) -> None:
        self.sock.close()


def download(port: int, host: str, size: int) -> float:
    """Seconds to receive `size` streamed bytes, from sending the request to the last byte."""
    response = Response(port, host, "GET", f"/download?size={size}")
    try:
        if response.status != 200:
            raise RuntimeError(f"download: HTTP {response.status}")
        received = 0
        for piece in response.body():
            received += len(piece)
        elapsed = time.perf_counter() - response.began
        if received != size:
            raise RuntimeError(f"download: {received} bytes of {size}")
        return elapsed
    finally:
        response.close()


def upload(port: int, host: str, size: int) -> float:
    """Seconds from the first byte of a `size`-byte upload to the app's answer that it read them all."""
    response = Response(port, host, "POST", "/count", upload=size)
    try:
        answer = json.loads(b"".join(bytes(piece) for piece in response.body()))
        elapsed = time.perf_counter() - response.began
        if response.status != 200 or answer["bytes"] != size:
            raise RuntimeError(f"upload: HTTP {response.status}, {answer}")
        return elapsed
    finally:
        response.close()


def events(port: int, host: str) -> tuple[float, list[float]]:
    """(seconds to the first whole event, the arrival time of every event from the request)."""
    response = Response(port, host, "GET", "/")
    try:
        if response.status != 200:
            raise RuntimeError(f"sse: HTTP {response.status}")
        text, arrivals = b"", []
        for piece in response.body():
            now = time.perf_counter() - response.began
            text += bytes(piece)
            arrivals.extend([now] * (text.count(b"\n\n") - len(arrivals)))
        if len(arrivals) != 10 or not text.startswith(b"data: event 0\n\n"):
            raise RuntimeError(f"sse: unexpected stream {text[:200]!r}")
        return arrivals[0], arrivals
    finally:
        response.close()


def pid_of(port: int, host: str) -> int:
    """The host's pid of the container process serving the endpoint."""
    response = Response(port, host, "GET", "/pid")
    try:
        answer = json.loads(b"".join(bytes(piece) for piece in response.body()))
    finally:
        response.close()
    pid = host_view.host_pid(answer["pid_namespace"], answer["pid"])
    if not pid:
        raise RuntimeError(f"no host process is pid {answer['pid']} of PID namespace {answer['pid_namespace']}")
    return pid


# ---------------------------------------------------------------- memory


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class PeakGrowth:
    """Samples the RSS of named processes every 50 ms on a thread; `growth` is peak minus start."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {name: rss(pid) for name, pid in pids.items()}
        self.peak = dict(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        for _ in range(int(TRANSFER_DEADLINE / SAMPLE_EVERY) + 100):
            for name, pid in self.pids.items():
                with contextlib.suppress(OSError):
                    self.peak[name] = max(self.peak[name], rss(pid))
            if self._stop.wait(SAMPLE_EVERY):
                return

    def __enter__(self) -> PeakGrowth:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def growth(self) -> dict[str, float]:
        return {name: (self.peak[name] - self.start[name]) / MIB for name in self.pids}


# ---------------------------------------------------------------- running the variants


@dataclass
class Result:
    ttfb: list[float] = field(default_factory=list)  # seconds to the first event, per stream
    gaps: list[float] = field(default_factory=list)  # between consecutive events, all streams
    totals: list[float] = field(default_factory=list)  # seconds to the last event, per stream
    seconds: dict[str, list[float]] = field(default_factory=lambda: {"download": [], "upload": []})
    growth: dict[str, dict[str, float]] = field(default_factory=lambda: {"download": {}, "upload": {}})


def measure(
    sse: tuple[int, str], raw: tuple[int, str], pids: dict[str, int], server: str, reps: int, size: int
) -> Result:
    """`server` names the process that runs the app ("container" or "server"), found by asking it."""
    result = Result()
    events(*sse)  # warm: start the container, first-time imports
    for _ in range(reps):
        ttfb, arrivals = events(*sse)
        result.ttfb.append(ttfb)
        result.gaps.extend(b - a for a, b in itertools.pairwise(arrivals))
        result.totals.append(arrivals[-1])
    pids = {**pids, server: pid_of(*raw)}
    transfers: dict[str, Callable[[int, str, int], float]] = {"download": download, "upload": upload}
    for direction, transfer in transfers.items():
        transfer(*raw, 16 * MIB)  # warm the path
        for _ in range(reps):
            with PeakGrowth(pids) as sampler:
                result.seconds[direction].append(transfer(*raw, size))
            worst = result.growth[direction]
            for name, grew in sampler.growth().items():
                worst[name] = max(worst.get(name, grew), grew)
    return result


def measure_stoker(reps: int, size: int) -> Result:
    cluster = Cluster()
    try:
        hosts = cluster.deploy(APP)
        port = cluster.http_port
        return measure((port, hosts["sse"]), (port, hosts["raw"]), cluster.pids(), "container", reps, size)
    finally:
        cluster.close()


@contextlib.contextmanager
def direct_server(function: str) -> Iterator[int]:
    """The port of uvicorn serving `function`'s ASGI app straight from the app file."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", DIRECT_SERVER, str(ROOT), str(APP), function, str(port)], cwd=ROOT)
    try:
        for _ in range(300):  # up to 30 s for the import and the bind
            if server.poll() is not None:
                raise RuntimeError(f"uvicorn for {function} exited with {server.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"uvicorn for {function} did not listen")
        yield port
    finally:
        stop(server, 10)


def measure_direct(reps: int, size: int) -> Result:
    with direct_server("sse") as sse_port, direct_server("raw") as raw_port:
        sse, raw = (sse_port, f"127.0.0.1:{sse_port}"), (raw_port, f"127.0.0.1:{raw_port}")
        return measure(sse, raw, {}, "server", reps, size)


# ---------------------------------------------------------------- report


def report(results: dict[str, Result], reps: int, size: int) -> None:
    print(f"streaming, {reps} repetitions, {os.cpu_count()} cores, client and servers on loopback")
    print()
    print(f"SSE: 10 events, intended gap {INTENDED_GAP * 1000:.0f} ms (median of {reps} streams; gaps pooled)")
    print(f"{'variant':<16} {'TTFB ms':>8} {'gap median ms':>14} {'gap max ms':>11} {'last event ms':>14}")
    for name, r in results.items():
        print(
            f"{name:<16} {median(r.ttfb) * 1000:>8.1f} {median(r.gaps) * 1000:>14.1f} "
            f"{max(r.gaps) * 1000:>11.1f} {median(r.totals) * 1000:>14.1f}"
        )
    base = results["uvicorn direct"]
    daemons = ["scheduler", "worker", "ingress", "container"]
    print()
    print(f"bodies: {size / MIB:.0f} MiB each way; MB/s = 10^6 bytes/s (median of {reps});")
    print(f"peak RSS growth in MiB over the transfer (worst of {reps});")
    print(f"targets: >= {TARGET_MBPS:.0f} MB/s each way, no daemon growing by more than {TARGET_GROWTH_MIB:.0f} MiB")
    header = " ".join(f"{d:>9}" for d in daemons)
    print(f"{'variant':<16} {'direction':<9} {'MB/s':>7} {'vs direct':>9} {header} {'server':>7}")
    for name, r in results.items():
        for direction, seconds in r.seconds.items():
            mbps = size / median(seconds) / 1e6
            ratio = mbps / (size / median(base.seconds[direction]) / 1e6)
            grew = r.growth[direction]
            cells = " ".join(f"{grew[d]:>9.1f}" if d in grew else f"{'-':>9}" for d in daemons)
            server = f"{grew['server']:>7.1f}" if "server" in grew else f"{'-':>7}"
            print(f"{name:<16} {direction:<9} {mbps:>7.1f} {ratio:>8.2f}x {cells} {server}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each measurement")
    parser.add_argument("--mib", type=int, default=1024, help="body size each way, MiB")
    args = parser.parse_args()
    reps, size = max(1, args.reps), max(1, args.mib) * MIB

    direct = measure_direct(reps, size)
    report({"stoker": measure_stoker(reps, size), "uvicorn direct": direct}, reps, size)


if __name__ == "__main__":
    main()
