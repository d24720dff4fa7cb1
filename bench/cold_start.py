"""Cold start: time from request to first response byte when no container is warm.

    python bench/cold_start.py [--reps 15] [--sandbox ROOTFS]

Measures, in one run on this machine:
  stoker (fork)     a `stoker up` cluster; containers forked from the worker's template
  stoker (no fork)  the same with STOKER_WORKER_FORK=0: a fresh interpreter per container
  naive subprocess  `python` importing FastAPI and serving the same endpoint with uvicorn,
                    started per request, without stoker (the baseline)
  stoker (warm)     a request to a warm container, for scale
With --sandbox ROOTFS (a Debian root filesystem), also: stoker sandboxed (fork) and (no fork),
each container in its own sandbox (worker/sandbox/) rooted in ROOTFS, beside the runs above,
which are what `--insecure-no-sandbox` gives.
Each stoker cold start redeploys the app (a new version has no containers) and then times one
request. Prints medians and p95 in milliseconds and ratios to the naive baseline.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import time

from harness import ROOT, Cluster, p

APP = ROOT / "examples" / "quickstart.py"
NAIVE_SERVER = """
import sys
from fastapi import FastAPI
import uvicorn
app = FastAPI()
@app.get("/")
def square(x: int):
    return {"square": x**2}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error")
"""


def first_byte(port: int, host: str, path: str = "/?x=3", deadline: float = 30.0) -> float:
    """Seconds until the response's status line and headers arrive; retries refused connects."""
    began = time.perf_counter()
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=deadline)
        try:
            conn.request("GET", path, headers={"Host": host})
            response = conn.getresponse()
            elapsed = time.perf_counter() - began
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"{response.status}: {body[:200]!r}")
            return elapsed
        except ConnectionRefusedError:
            if time.perf_counter() - began > deadline:
                raise
            time.sleep(0.002)
        finally:
            conn.close()


def stoker_cold(env: dict[str, str], reps: int) -> tuple[list[float], list[float]]:
    cluster = Cluster(env)
    try:
        first_byte(cluster.http_port, cluster.deploy(APP)["square"])  # warm the page cache and the template
        cold, warm = [], []
        for _ in range(reps):
            host = cluster.deploy(APP)["square"]
            time.sleep(0.3)  # let the previous version's containers stop
            cold.append(first_byte(cluster.http_port, host))
            warm.append(first_byte(cluster.http_port, host))
        return cold, warm
    finally:
        cluster.close()


def naive_cold(reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        began = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-c", NAIVE_SERVER, str(port)])
        try:
            first_byte(port, f"127.0.0.1:{port}")
            times.append(time.perf_counter() - began)
        finally:
            server.terminate()
            server.wait(10)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=15, help="cold starts per variant (at least 10)")
    parser.add_argument("--sandbox", metavar="ROOTFS", help="also run with sandboxes rooted in ROOTFS")
    args = parser.parse_args()
    reps = max(10, args.reps)

    results: dict[str, list[float]] = {}
    results["naive subprocess"] = naive_cold(reps)
    results["stoker (fork)"], results["stoker (warm)"] = stoker_cold({}, reps)
    results["stoker (no fork)"], _ = stoker_cold({"STOKER_WORKER_FORK": "0"}, reps)
    if args.sandbox:
        sandboxed = {"STOKER_SANDBOX_ROOTFS": args.sandbox}
        results["sandboxed (fork)"], results["sandboxed (warm)"] = stoker_cold(sandboxed, reps)
        results["sandboxed (no fork)"], _ = stoker_cold({**sandboxed, "STOKER_WORKER_FORK": "0"}, reps)

    base = statistics.median(results["naive subprocess"])
    print(f"cold start, request to first byte, {reps} repetitions, {os.cpu_count()} cores")
    print(f"{'variant':<18} {'median ms':>10} {'p95 ms':>8} {'vs naive':>9}")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:<18} {median * 1000:>10.1f} {p(values, 0.95) * 1000:>8.1f} {median / base:>8.2f}x")


if __name__ == "__main__":
    main()
