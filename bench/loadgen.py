"""A closed-loop HTTP/1.1 keep-alive load generator, run as its own process by the benchmarks.

    python bench/loadgen.py --port 8000 [--host ws--app-fn.localhost] [--connections 64]
                            [--requests 5000] [--warmup 500] [--time-limit 30]

Opens `--connections` keep-alive connections to 127.0.0.1:PORT, each sending `GET PATH` back to
back (the next request as soon as the previous response is complete), and prints one JSON object
on stdout: throughput, latency percentiles in milliseconds, errors, and this process's own CPU.

Two phases on the same connections: `--warmup` requests that are not recorded, then, once every
connection is idle, `--requests` measured ones. No request is sent past `--time-limit` seconds from
the start (the report then says `truncated`); what is still in flight a few seconds later is given
up on and reported as failures.
Responses must carry Content-Length (what uvicorn, aiohttp and stoker send for small bodies).

Built on asyncio protocols over uvloop, so the parsing cost per response is a buffer search and
a header scan; `cpu_us_per_request` in the report shows what the generator itself spent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time

import uvloop

MAX_HEAD = 64 * 1024
GRACE_SECONDS = 5.0  # past the time limit, for requests already in flight


class ProtocolError(Exception):
    """The server answered something this generator cannot measure."""


class Phase:
    """One phase: `total` requests over all connections, none sent after `deadline`."""

    def __init__(self, total: int, deadline: float, record: bool) -> None:
        self.total = total
        self.record = record
        self.issued = 0
        self.in_flight = 0
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.failures: list[str] = []
        self.started = time.perf_counter()
        self.deadline = deadline
        self.ended = self.started
        self.truncated = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def claim(self) -> bool:
        """Whether a connection that just became idle sends another request."""
        if self.issued >= self.total:
            return False
        if time.perf_counter() >= self.deadline:
            self.truncated = True
            return False
        self.issued += 1
        self.in_flight += 1
        return True

    def finished(self, latency: float, status: int) -> None:
        self.in_flight -= 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if self.record:
            self.latencies.append(latency)

    def failed(self, reason: str) -> None:
        self.in_flight -= 1
        self.failures.append(reason)

    def check_done(self) -> None:
        if self.in_flight == 0 and not self.done.done():
            self.ended = time.perf_counter()
            self.done.set_result(None)


class Connection(asyncio.Protocol):
    """One keep-alive connection sending `request` whenever its phase lets it."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.buffer = bytearray()
        self.body_end = -1  # where the current response ends in the buffer; -1: head not parsed yet
        self.status = 0
        self.sent_at = 0.0
        self.busy = False
        self.phase: Phase | None = None
        self.transport: asyncio.Transport | None = None
        self.closing = False  # this side closed it: the run is over
        self.dropped = False  # the server closed it while the run went on

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def start(self, phase: Phase) -> None:
        self.phase = phase
        self._next()

    def _next(self) -> None:
        assert self.phase is not None and self.transport is not None
        if self.transport.is_closing() or not self.phase.claim():
            self.phase.check_done()
            return
        self.busy = True
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.busy:
            if self.body_end < 0:
                head_end = self.buffer.find(b"\r\n\r\n")
                if head_end < 0:
                    if len(self.buffer) > MAX_HEAD:
                        self._fail("response head larger than 64 KiB")
                    return
                try:
                    self.status, length = _parse_head(bytes(self.buffer[:head_end]))
                except ProtocolError as exc:
                    self._fail(str(exc))
                    return
                self.body_end = head_end + 4 + length
            if len(self.buffer) < self.body_end:
                return
            latency = time.perf_counter() - self.sent_at
            del self.buffer[: self.body_end]
            self.body_end = -1
            self.busy = False
            assert self.phase is not None
            self.phase.finished(latency, self.status)
            self._next()
        if self.buffer:
            self._fail("bytes arrived with no request outstanding")

    def _fail(self, reason: str) -> None:
        if self.busy and self.phase is not None:
            self.busy = False
            self.phase.failed(reason)
            self.phase.check_done()
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.dropped = True
            self._fail(f"connection closed by the server ({exc or 'EOF'})")


def _parse_head(head: bytes) -> tuple[int, int]:
    """(status, Content-Length) of a response head, without the blank line."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    status = int(parts[1])
    length = -1
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            raise ProtocolError("the server closes the connection (Connection: close); keep-alive is required")
        elif name == b"transfer-encoding":
            raise ProtocolError(f"Transfer-Encoding {value.strip()!r} is not supported; Content-Length is required")
    if length < 0:
        raise ProtocolError(f"response {status} has no Content-Length")
    return status, length


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest rank, as bench/harness.py's p()."""
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def _run_phase(connections: list[Connection], phase: Phase) -> None:
    for conn in connections:
        conn.start(phase)
    phase.check_done()  # nothing to send at all
    try:
        await asyncio.wait_for(asyncio.shield(phase.done), phase.deadline + GRACE_SECONDS - time.perf_counter())
    except TimeoutError:
        phase.truncated = True
        phase.ended = time.perf_counter()
        phase.failures.append(f"{phase.in_flight} requests still in flight {GRACE_SECONDS:g} s past the time limit")
        for conn in connections:
            conn.closing = True
            if conn.transport is not None:
                conn.transport.abort()


async def generate(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    deadline = time.perf_counter() + args.time_limit
    host = args.host or f"127.0.0.1:{args.port}"
    request = f"GET {args.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: stoker-loadgen\r\nAccept: */*\r\n\r\n".encode()
    connections: list[Connection] = []
    try:
        for _ in range(args.connections):
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: Connection(request), "127.0.0.1", args.port),
                deadline - time.perf_counter(),
            )
            connections.append(conn)
        warmup = Phase(args.warmup, deadline, record=False)
        await _run_phase(connections, warmup)
        if warmup.failures:
            return {"error": f"warmup failed: {warmup.failures[0]}", "failures": len(warmup.failures)}
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        measured = Phase(args.requests, deadline, record=True)
        await _run_phase(connections, measured)
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        for conn in connections:
            conn.closing = True
            if conn.transport is not None:
                conn.transport.close()
    elapsed = measured.ended - measured.started
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    ordered = sorted(measured.latencies)
    count = len(ordered)
    report: dict[str, object] = {
        "connections": args.connections,
        "requests": count,
        "truncated": measured.truncated,
        "elapsed_s": elapsed,
        "rps": count / elapsed if elapsed > 0 else 0.0,
        "statuses": {str(k): v for k, v in sorted(measured.statuses.items())},
        "failures": len(measured.failures),
        "dropped_connections": sum(conn.dropped for conn in connections),
        "first_failure": measured.failures[0] if measured.failures else None,
        "cpu_s": cpu,
        "cpu_us_per_request": cpu / count * 1e6 if count else None,
    }
    if count:
        report.update(
            mean_ms=sum(ordered) / count * 1000,
            p50_ms=percentile(ordered, 0.50) * 1000,
            p90_ms=percentile(ordered, 0.90) * 1000,
            p99_ms=percentile(ordered, 0.99) * 1000,
            max_ms=ordered[-1] * 1000,
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="on 127.0.0.1")
    parser.add_argument("--host", default="", help="Host header (default 127.0.0.1:PORT)")
    parser.add_argument("--path", default="/")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--requests", type=int, default=5000, help="measured requests, over all connections")
    parser.add_argument("--warmup", type=int, default=500, help="unrecorded requests first")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds for the whole run")
    args = parser.parse_args()
    if args.connections < 1 or args.requests < 1 or args.warmup < 0 or args.time_limit <= 0:
        parser.error("--connections and --requests must be at least 1, --warmup at least 0, --time-limit positive")
    try:
        report = uvloop.run(generate(args))
    except (OSError, TimeoutError) as exc:
        report = {"error": f"cannot connect to 127.0.0.1:{args.port}: {exc!r}"}
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    sys.exit(1 if "error" in report else 0)


if __name__ == "__main__":
    main()
