"""Cold start: time from request to first response byte when no container is warm.

    python bench/cold_start.py [--reps 15]

Measures, in one run on this machine, for the quickstart app (its image: Debian with FastAPI):
  sandboxed (fork)     a `stoker up` cluster as it starts by default: each container in its own
                       sandbox (worker/sandbox/) rooted in the image's layers, forked from the
                       image's template
  sandboxed (no fork)  the same with STOKER_WORKER_FORK=0: a fresh interpreter per container
  insecure (fork)      STOKER_INSECURE_NO_SANDBOX=1: containers enter the image without a sandbox
  insecure (no fork)   both
  naive subprocess     `python` importing FastAPI and serving the same endpoint with uvicorn,
                       started per request, without stoker (the baseline)
  sandboxed (warm)     a request to a warm container, for scale
Each stoker cold start redeploys the app (a new version has no containers) and then times one
request. Prints medians and p95 in milliseconds and ratios to the naive baseline. Then the first
build of `Image.debian_slim()` on an empty image dir (from the cluster's start, when the worker
builds the Debian base, to the deploy's end), and the same image's next deploy (its layers
reused), in seconds. The cold-start clusters share one image dir (under
~/.cache/stoker-bench), so their image is built once.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


IMAGES = Path.home() / ".cache" / "stoker-bench" / "images"
DEBIAN_SLIM_APP = """
import modal
app = modal.App("bench-debian-slim")
@app.function(image=modal.Image.debian_slim())
def f():
    return 1
"""


def stoker_cold(env: dict[str, str], reps: int) -> tuple[list[float], list[float]]:
    cluster = Cluster({"STOKER_IMAGE_DIR": str(IMAGES), **env})
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


def first_build() -> tuple[float, float]:
    """Seconds from starting a cluster on an empty image dir to having deployed an app of
    `Image.debian_slim()` (the worker builds that image's Debian base at start, as the root of
    containers with no image), then to deploy it again (a new version of the same image)."""
    with tempfile.TemporaryDirectory(prefix="stoker-bench-build-") as scratch:
        app = Path(scratch) / "debian_slim_app.py"
        app.write_text(DEBIAN_SLIM_APP)
        began = time.perf_counter()
        cluster = Cluster({"STOKER_IMAGE_DIR": str(Path(scratch) / "images")})
        try:
            cluster.deploy(app)
            built = time.perf_counter()
            cluster.deploy(app)
            return built - began, time.perf_counter() - built
        finally:
            cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=15, help="cold starts per variant (at least 10)")
    args = parser.parse_args()
    reps = max(10, args.reps)

    results: dict[str, list[float]] = {}
    results["naive subprocess"] = naive_cold(reps)
    insecure = {"STOKER_INSECURE_NO_SANDBOX": "1"}
    results["sandboxed (fork)"], results["sandboxed (warm)"] = stoker_cold({}, reps)
    results["sandboxed (no fork)"], _ = stoker_cold({"STOKER_WORKER_FORK": "0"}, reps)
    results["insecure (fork)"], _ = stoker_cold(insecure, reps)
    results["insecure (no fork)"], _ = stoker_cold({**insecure, "STOKER_WORKER_FORK": "0"}, reps)

    base = statistics.median(results["naive subprocess"])
    print(f"cold start, request to first byte, {reps} repetitions, {os.cpu_count()} cores")
    print(f"{'variant':<20} {'median ms':>10} {'p95 ms':>8} {'vs naive':>9}")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:<20} {median * 1000:>10.1f} {p(values, 0.95) * 1000:>8.1f} {median / base:>8.2f}x")
    first, again = first_build()
    print(
        f"Image.debian_slim(): first build on an empty image dir (cluster start and deploy) {first:.1f} s, "
        f"its next deploy {again:.2f} s"
    )


if __name__ == "__main__":
    main()
