"""Warm path: a FastAPI hello through stoker, against bare uvicorn and plain proxies.

    python bench/warm_path.py [--reps 3] [--requests 5000] [--concurrency 1,16,64] [--time-limit 30] [--pin]

Serves the quickstart's `hello` five ways, all up at once on loopback, and drives each from
bench/loadgen.py, a closed-loop keep-alive load generator in its own process:
  uvicorn         the app stoker's runtime builds for the endpoint, served by uvicorn (uvloop +
                  httptools) in its own process: the baseline
  aiohttp proxy   an aiohttp server forwarding with an aiohttp ClientSession (keep-alive
                  connector) to that uvicorn
  httpx proxy     the same aiohttp server forwarding with an httpx.AsyncClient
  stoker          a `stoker up` cluster (rate limit off): ingress, a placement by the scheduler
                  over its stream, the container over its multiplexed stream; the endpoint tuned
                  (bench/apps/warm_app.py: one container taking every concurrent request)
  stoker quickstart  the same cluster serving the seed's Quick Start verbatim
                  (bench/apps/quickstart_app.py: its image, no @concurrent, so one request at a
                  time per container, and as many containers as the worker's cores hold)
With --pin, every server process runs on the first core and the load generator on the second
(as the issue that set the quickstart's targets measured; the worker then places containers
against one core).
Each point is one load generator run: a warm-up (--warmup, at least 4 requests per connection),
then --requests measured requests, none sent past --time-limit seconds (at most 30) from its start.
For every concurrency the variants run back to back, and the whole round repeats `--reps` times;
the table shows medians over the rounds and ratios to uvicorn's median. "CPU us/req" is the CPU
time of every server-side process (the load generator excluded) per request, warm-up included.
Before that, bare uvicorn with a starlette hello at the highest concurrency checks that the load
generator is not the bottleneck (the design doc measured ~18,000-20,000 requests/s here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import ROOT, Cluster, median, stop

APP = ROOT / "bench" / "apps" / "warm_app.py"
QUICKSTART = ROOT / "bench" / "apps" / "quickstart_app.py"
IMAGES = Path.home() / ".cache" / "stoker-bench" / "images"  # as bench/cold_start.py: built once
FUNCTION = "hello"
LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
BASELINE = "uvicorn"
VARIANTS = (BASELINE, "aiohttp proxy", "httpx proxy", "stoker", "stoker quickstart")
TARGET_ADDED_P50_MS = 1.0  # issue 6: stoker adds at most this to p50 at c=1
TARGET_QUICKSTART_ADDED_P50_MS = 0.5  # issue 14: the seed's defaults add at most this at c=1
READY_SECONDS = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVER_CPU, LOADGEN_CPU = 0, 1  # with --pin

# Hop-by-hop headers and those the proxy's own server sets again.
_NOT_FORWARDED = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host"}
)
_NOT_RETURNED = _NOT_FORWARDED | {"content-length", "content-encoding", "date", "server"}


# -- the servers, each run as `python bench/warm_path.py --serve KIND --fd N` --------------------


def _serve_uvicorn(sock: socket.socket, starlette: bool) -> None:
    import uvicorn

    if starlette:
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        async def hello(request: Any) -> PlainTextResponse:
            return PlainTextResponse("Hello world!")

        app: Any = Starlette(routes=[Route("/", hello)])
    else:
        from client.appfile import find_app, find_function, import_app_file
        from worker.runtime.web import build_asgi_app

        app = build_asgi_app(find_function(find_app(import_app_file(APP)), FUNCTION))
    config = uvicorn.Config(app, loop="uvloop", http="httptools", log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


Forward = Callable[[str, str, list[tuple[str, str]], bytes], Awaitable[tuple[int, list[tuple[str, str]], bytes]]]


@contextlib.asynccontextmanager
async def _aiohttp_forward(upstream: str) -> AsyncIterator[Forward]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

        async def forward(method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> Any:
            async with session.request(
                method, upstream + path, headers=headers, data=body or None, allow_redirects=False
            ) as response:
                return response.status, list(response.headers.items()), await response.read()

        yield forward


@contextlib.asynccontextmanager
async def _httpx_forward(upstream: str) -> AsyncIterator[Forward]:
    import httpx

    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=upstream, limits=limits, timeout=30.0) as client:

        async def forward(method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> Any:
            response = await client.request(method, path, headers=headers, content=body)
            return response.status_code, list(response.headers.multi_items()), response.content

        yield forward


async def _serve_proxy(sock: socket.socket, upstream: str, client: str) -> None:
    from aiohttp import web
    from multidict import CIMultiDict

    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    forwarder = _aiohttp_forward if client == "aiohttp" else _httpx_forward
    async with forwarder(upstream) as forward:

        async def handle(request: web.Request) -> web.Response:
            headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED]
            status, got, body = await forward(request.method, request.path_qs, headers, await request.read())
            returned = CIMultiDict((k, v) for k, v in got if k.lower() not in _NOT_RETURNED)
            return web.Response(status=status, body=body, headers=returned)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
            await stop.wait()
        finally:
            await runner.cleanup()


def serve(kind: str, fd: int, upstream: str) -> None:
    sock = socket.socket(fileno=fd)
    if kind in ("uvicorn", "starlette"):
        _serve_uvicorn(sock, starlette=kind == "starlette")
    else:
        import uvloop

        uvloop.run(_serve_proxy(sock, upstream, kind))


# -- the benchmark -------------------------------------------------------------------------------


class Server:
    """A child process serving on a loopback socket bound here, so its port is known at once."""

    def __init__(self, kind: str, upstream: str = "") -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(2048)
        self.port = sock.getsockname()[1]
        try:
            command = [sys.executable, __file__, "--serve", kind, "--fd", str(sock.fileno()), "--upstream", upstream]
            self.process = subprocess.Popen(command, pass_fds=[sock.fileno()], cwd=ROOT)
        finally:
            sock.close()  # the child holds it now; if the child dies, connecting is refused

    def close(self) -> None:
        stop(self.process, 10)


@dataclass
class Target:
    name: str
    port: int
    host: str
    process: subprocess.Popen[Any] | None = None  # checked for an early exit while waiting


def get(port: int, host: str, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(target: Target) -> bytes:
    """The body of the first 200 answer; retries until READY_SECONDS have passed."""
    deadline = time.monotonic() + READY_SECONDS
    last: object = None
    while time.monotonic() < deadline:
        if target.process is not None and target.process.poll() is not None:
            raise RuntimeError(f"{target.name} exited with code {target.process.returncode} while starting")
        try:
            status, body = get(target.port, target.host)
            if status == 200:
                return body
            last = f"HTTP {status}: {body[:200]!r}"
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{target.name} did not answer 200 within {READY_SECONDS:g} s (last: {last})")


def process_tree_cpu() -> dict[int, tuple[str, float]]:
    """{pid: (role, CPU seconds)} for every process under this one (children's argv name the role)."""
    stats: dict[int, tuple[int, float, list[bytes]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS, argv)
    found: dict[int, tuple[str, float]] = {}
    frontier = [os.getpid()]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, cpu, argv) in stats.items():
            if ppid == parent:
                found[pid] = (_role(argv, stats.get(ppid, (0, 0.0, []))[2]), cpu)
                frontier.append(pid)
    return found


def _role(argv: list[bytes], parent_argv: list[bytes]) -> str:
    if b"--serve" in argv:
        return argv[argv.index(b"--serve") + 1].decode()
    if b"-m" in argv:
        module = argv[argv.index(b"-m") + 1].decode()
        if module == "client":
            return argv[argv.index(b"-m") + 2].decode()  # up, scheduler, worker, ingress
        if module == "worker.runtime.template":
            return "container" if parent_argv == argv else "template"
        return module
    return _program(argv)


def _program(argv: list[bytes]) -> str:
    """A process no rule above names, by its program (how bench/ray_serve.py tells Ray's apart)."""
    if not argv or not argv[0]:
        return "other"
    program = Path(argv[0].decode(errors="replace")).name
    if program.startswith("ray::"):  # Ray's workers retitle themselves: ray::ServeController.listen_for_change
        return program.split(".")[0]
    script = next((a for a in argv[1:3] if a.endswith(b".py")), b"")  # python [-u] SCRIPT
    return Path(script.decode(errors="replace")).name if script else program


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # server side, per request
    loadgen_cpu_fraction: float
    loadgen_cpu_us: float  # per request
    truncated: bool
    cpu_by_role: dict[str, float] = field(default_factory=dict)  # us per request


def drive(target: Target, connections: int, args: argparse.Namespace) -> Sample:
    warmup = max(args.warmup, 4 * connections)
    command = [
        sys.executable, str(LOADGEN), "--port", str(target.port), "--host", target.host,
        "--connections", str(connections), "--requests", str(args.requests), "--warmup", str(warmup),
        "--time-limit", str(args.time_limit),
    ]  # fmt: skip
    before = process_tree_cpu()
    pinned = (lambda: os.sched_setaffinity(0, {LOADGEN_CPU})) if args.pin else None
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=args.time_limit + 30, cwd=ROOT, preexec_fn=pinned
    )
    after = process_tree_cpu()
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise RuntimeError(f"loadgen gave no report for {target.name}: {done.stderr[-2000:]}") from None
    if "error" in report or report["failures"] or not report["requests"] or set(report["statuses"]) != {"200"}:
        raise RuntimeError(f"{target.name} at c={connections} did not answer every request with 200: {report}")
    served = report["requests"] + warmup
    by_role: dict[str, float] = {}
    for pid, (role, cpu) in after.items():
        spent = cpu - before.get(pid, (role, 0.0))[1]
        by_role[role] = by_role.get(role, 0.0) + spent / served * 1e6
    return Sample(
        rps=report["rps"],
        p50_ms=report["p50_ms"],
        p99_ms=report["p99_ms"],
        cpu_us=sum(by_role.values()),
        loadgen_cpu_fraction=report["cpu_s"] / report["elapsed_s"],
        loadgen_cpu_us=report["cpu_us_per_request"],
        truncated=report["truncated"],
        cpu_by_role=by_role,
    )


def check_loadgen(connections: int, args: argparse.Namespace) -> list[Sample]:
    server = Server("starlette")
    try:
        target = Target("uvicorn + starlette hello", server.port, f"127.0.0.1:{server.port}", server.process)
        wait_ready(target)
        return [drive(target, connections, args) for _ in range(args.reps)]
    finally:
        server.close()


def run_rounds(targets: list[Target], args: argparse.Namespace, samples: dict[tuple[str, int], list[Sample]]) -> None:
    """Check every target answers alike, then drive them back to back, round after round, into
    `samples` (so a benchmark cut short still has what it measured)."""
    bodies = {target.name: wait_ready(target) for target in targets}
    if len(set(bodies.values())) != 1:
        raise RuntimeError(f"the variants answer differently: {bodies}")
    width = max(len(target.name) for target in targets)
    for rep in range(args.reps):
        # Each round starts at the next variant, so none always follows the same one (the httpx
        # proxy's long rounds heat the machine for whatever comes next).
        order = targets[rep % len(targets) :] + targets[: rep % len(targets)]
        for connections in args.concurrency:
            for target in order:
                sample = drive(target, connections, args)
                samples.setdefault((target.name, connections), []).append(sample)
                print(
                    f"  round {rep + 1}/{args.reps} c={connections:<3} {target.name:<{width}} "
                    f"{sample.rps:>8.0f} req/s  p50 {sample.p50_ms:.2f} ms",
                    file=sys.stderr,
                    flush=True,
                )


def measure(args: argparse.Namespace) -> dict[tuple[str, int], list[Sample]]:
    samples: dict[tuple[str, int], list[Sample]] = {}
    servers: list[Server] = []
    cluster: Cluster | None = None
    try:
        uvicorn = Server("uvicorn")
        servers.append(uvicorn)
        upstream = f"http://127.0.0.1:{uvicorn.port}"
        aiohttp_proxy = Server("aiohttp", upstream)
        servers.append(aiohttp_proxy)
        httpx_proxy = Server("httpx", upstream)
        servers.append(httpx_proxy)
        cluster = Cluster({"STOKER_RATE_LIMIT_RPS": "0", "STOKER_IMAGE_DIR": str(IMAGES)})
        targets = [
            Target(BASELINE, uvicorn.port, f"127.0.0.1:{uvicorn.port}", uvicorn.process),
            Target("aiohttp proxy", aiohttp_proxy.port, f"127.0.0.1:{aiohttp_proxy.port}", aiohttp_proxy.process),
            Target("httpx proxy", httpx_proxy.port, f"127.0.0.1:{httpx_proxy.port}", httpx_proxy.process),
            Target("stoker", cluster.http_port, cluster.deploy(APP)[FUNCTION], cluster.process),
            Target("stoker quickstart", cluster.http_port, cluster.deploy(QUICKSTART)[FUNCTION], cluster.process),
        ]
        run_rounds(targets, args, samples)
    finally:
        if cluster is not None:
            cluster.close()
        for server in reversed(servers):
            server.close()
    return samples


def report(samples: dict[tuple[str, int], list[Sample]], check: list[Sample], args: argparse.Namespace) -> None:
    def med(name: str, c: int, metric: str) -> float:
        return median([getattr(s, metric) for s in samples[(name, c)]])

    print(
        f"\nwarm path: GET / on a FastAPI hello, {args.requests} requests per point, median of {args.reps} rounds, "
        f"{os.cpu_count()} cores (load generator included)"
    )
    header = f"{'variant':<17} {'c':>3} {'req/s':>8} {'vs uv':>6} {'p50 ms':>7} {'vs uv':>6} {'p99 ms':>7} {'vs uv':>6}"
    print(f"{header} {'CPU us/req':>10}")
    print("-" * (len(header) + 11))
    truncated = False
    for c in args.concurrency:
        base = {metric: med(BASELINE, c, metric) for metric in ("rps", "p50_ms", "p99_ms")}
        for name in VARIANTS:
            rps, p50, p99 = (med(name, c, metric) for metric in ("rps", "p50_ms", "p99_ms"))
            mark = "*" if any(s.truncated for s in samples[(name, c)]) else " "
            truncated = truncated or mark == "*"
            print(
                f"{name:<17} {c:>3} {rps:>8.0f}{mark}{rps / base['rps']:>5.2f}x "
                f"{p50:>7.2f} {p50 / base['p50_ms']:>5.2f}x {p99:>7.2f} {p99 / base['p99_ms']:>5.2f}x "
                f"{med(name, c, 'cpu_us'):>10.0f}"
            )
    if truncated:
        print(f"* at least one round hit the {args.time_limit:g} s limit before its {args.requests} requests")

    low, high = min(args.concurrency), max(args.concurrency)
    print()
    added = {name: med(name, low, "p50_ms") - med(BASELINE, low, "p50_ms") for name in VARIANTS[1:]}
    print(f"added p50 at c={low} (vs uvicorn): " + ", ".join(f"{n} {ms:+.2f} ms" for n, ms in added.items()))
    for name, target in (("stoker", TARGET_ADDED_P50_MS), ("stoker quickstart", TARGET_QUICKSTART_ADDED_P50_MS)):
        ok = added[name] <= target
        print(f"  target: {name} adds at most {target:g} ms -> {'met' if ok else 'NOT met'}")
    proxy_cpu = med("aiohttp proxy", high, "cpu_us")
    for name in ("stoker", "stoker quickstart"):
        ratio = med(name, high, "rps") / med("aiohttp proxy", high, "rps")
        print(f"{name} vs aiohttp proxy at c={high}: {ratio:.2f}x the requests/s")
        print(f"  target: at least 1.00x -> {'met' if ratio >= 1.0 else 'NOT met'}")
        # The same, round by round: both measured within seconds of each other, so a machine
        # that slows down between rounds moves both.
        paired = sorted(
            s.rps / a.rps for s, a in zip(samples[(name, high)], samples[("aiohttp proxy", high)], strict=True)
        )
        print(f"  round by round: median {median(paired):.2f}x, from {paired[0]:.2f}x to {paired[-1]:.2f}x")
        cpu = med(name, high, "cpu_us")
        verdict = "met" if cpu <= proxy_cpu else "NOT met"
        print(f"  CPU {cpu:.0f} us/req against the proxy pair's {proxy_cpu:.0f} (target: at most) -> {verdict}")
        roles = {role for s in samples[(name, high)] for role in s.cpu_by_role}
        split = {role: median([s.cpu_by_role.get(role, 0.0) for s in samples[(name, high)]]) for role in roles}
        shown = ", ".join(f"{role} {us:.0f}" for role, us in sorted(split.items(), key=lambda kv: -kv[1]) if us >= 1)
        print(f"  CPU us/req at c={high} by process: {shown}")
    worst = max(s.loadgen_cpu_fraction for group in samples.values() for s in group)
    print(
        f"load generator check: uvicorn + starlette hello at c={high}: {median([s.rps for s in check]):.0f} req/s "
        f"(design doc ~18,000-20,000), the generator spending {median([s.loadgen_cpu_us for s in check]):.0f} us "
        f"CPU per request; above, it used at most {worst:.0%} of a core"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="rounds (at least 3)")
    parser.add_argument("--requests", type=int, default=5000, help="measured requests per point")
    parser.add_argument("--warmup", type=int, default=500, help="unmeasured requests first (at least 4 per connection)")
    parser.add_argument("--concurrency", default="1,16,64", help="connections, comma-separated")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per point, at most 30")
    parser.add_argument("--pin", action="store_true", help="servers on core 0, the load generator on core 1")
    parser.add_argument("--serve", choices=("uvicorn", "starlette", "aiohttp", "httpx"), help=argparse.SUPPRESS)
    parser.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.fd, args.upstream)
        return
    args.reps = max(3, args.reps)
    args.time_limit = min(30.0, args.time_limit)
    args.concurrency = sorted({int(c) for c in args.concurrency.split(",")})
    if args.pin:
        os.sched_setaffinity(0, {SERVER_CPU})  # every server started from here inherits it
    check = check_loadgen(max(args.concurrency), args)
    report(measure(args), check, args)


if __name__ == "__main__":
    main()
