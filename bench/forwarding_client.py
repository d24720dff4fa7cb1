"""Forwarding client: the CPU a @web_server container spends per forwarded request, aiohttp vs httpx.

    python bench/forwarding_client.py [--reps 3] [--requests 2000] [--concurrency 1,32] [--time-limit 20]

A bare uvicorn (uvloop + httptools) "hello" backend runs in its own process on loopback. For each
client library, a fresh process makes --requests GET requests to it, --concurrency at a time over
one keep-alive pool, the way worker/runtime/forward.py does (the caller's headers passed on,
Host included, the body read as it streams), on the plain asyncio loop the container runtime
uses. It reports its own CPU time per request (time.process_time, after a warm-up of 200
requests) and requests/s; no request is sent past --time-limit seconds. The clients alternate
within each round, rounds repeat --reps times, and the table shows medians and the ratio to aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

CLIENTS = ("aiohttp", "httpx")
WARMUP = 200
HEADERS = {
    "host": "ws--bench-hello.localhost",
    "user-agent": "bench/1.0",
    "accept": "*/*",
    "x-forwarded-for": "127.0.0.1",
    "x-forwarded-proto": "http",
    "x-forwarded-host": "ws--bench-hello.localhost",
}


def _serve_backend(fd: int) -> None:
    import uvicorn

    body = b"Hello world!"

    async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})

    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(hello, loop="uvloop", http="httptools", log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


Get = Callable[[], Awaitable[int]]


async def _drive(get: Get, requests: int, concurrency: int, time_limit: float) -> dict[str, float]:
    async def run(count: int, deadline: float) -> int:
        left = count
        done = 0

        async def worker() -> None:
            nonlocal left, done
            while left > 0 and time.monotonic() < deadline:
                left -= 1
                assert await get() == 200
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done

    start = time.monotonic()
    await run(WARMUP, start + time_limit)
    cpu0, wall0 = time.process_time(), time.monotonic()
    done = await run(requests, start + time_limit)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    return {"requests": done, "cpu_us": cpu / max(1, done) * 1e6, "rps": done / wall if wall else 0.0}


async def _measure(client: str, url: str, requests: int, concurrency: int, time_limit: float) -> dict[str, float]:
    if client == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

            async def get_aiohttp() -> int:
                async with session.get(url, headers=HEADERS, allow_redirects=False) as response:
                    async for _ in response.content.iter_any():
                        pass
                    return response.status

            return await _drive(get_aiohttp, requests, concurrency, time_limit)
    import httpx

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as http:

        async def get_httpx() -> int:
            async with http.stream("GET", url, headers=HEADERS) as response:
                async for _ in response.aiter_raw():
                    pass
                return response.status_code

        return await _drive(get_httpx, requests, concurrency, time_limit)


def _run_client(client: str, url: str, args: argparse.Namespace, concurrency: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--measure", client, "--url", url, "--requests", str(args.requests)]
    command += ["--concurrency", str(concurrency), "--time-limit", str(args.time_limit)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=args.time_limit + 60, check=True)
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--time-limit", type=float, default=20.0)
    parser.add_argument("--serve-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.time_limit = min(args.time_limit, 30.0)
    if args.serve_fd is not None:
        _serve_backend(args.serve_fd)
        return
    if args.measure:
        result = asyncio.run(_measure(args.measure, args.url, args.requests, int(args.concurrency), args.time_limit))
        print(json.dumps(result))
        return

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    backend = subprocess.Popen([sys.executable, __file__, "--serve-fd", str(sock.fileno())], pass_fds=(sock.fileno(),))
    try:
        _wait_ready(sock.getsockname()[1])
        print(f"backend {url}; {args.requests} requests per run, {args.reps} rounds, medians\n")
        print("| client | c | req/s | CPU µs/req | CPU vs aiohttp |")
        print("|---|---|---|---|---|")
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            runs: dict[str, list[dict[str, float]]] = {c: [] for c in CLIENTS}
            for _ in range(args.reps):
                for client in CLIENTS:
                    runs[client].append(_run_client(client, url, args, concurrency))
            base = statistics.median(r["cpu_us"] for r in runs["aiohttp"])
            for client in CLIENTS:
                cpu = statistics.median(r["cpu_us"] for r in runs[client])
                rps = statistics.median(r["rps"] for r in runs[client])
                print(f"| {client} | {concurrency} | {rps:,.0f} | {cpu:,.0f} | {cpu / base:.2f}x |")
    finally:
        backend.terminate()
        backend.wait(10)
        sock.close()


def _wait_ready(port: int) -> None:
    # The listening socket accepts before uvicorn runs: wait for a real answer.
    import http.client

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the backend did not start")


if __name__ == "__main__":
    main()
