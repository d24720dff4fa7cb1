"""Memory snapshots: time from request to first byte when no container is running, for a web
method of a class whose module imports torch and whose @modal.enter(snap=True) hook builds a
model (bench/apps/snapshot_app.py), with enable_memory_snapshot=True against the same class
without it, in one run.

    python bench/memory_snapshot.py [--reps 10]

Needs torch (the CPU build) where the cluster's worker runs: the app has no image, so it runs
in the worker's own environment, this virtual environment (`.venv/bin/pip install torch`).

Each repetition waits until the scheduler reports no container of a class (scaledown_window=1),
then times one request to it; the two classes alternate. With snapshots, the template made by the
first request after the deploy stays while the app version is live, so a cold start is a fork of
it and the snap=False hooks (none here); without, each cold start forks the worker's template,
imports torch and builds the model. Prints medians and p95 in milliseconds, the ratio, the first
request after the deploy (which makes the snapshot), the hook's time as each process measured it,
and a warm request for scale.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import time
from typing import Any

from harness import ROOT, Cluster, p

APP = ROOT / "bench" / "apps" / "snapshot_app.py"
CLASSES = ("Snapshotted", "Plain")


def timed_get(port: int, host: str, timeout: float = 120.0) -> tuple[float, Any]:
    """Seconds until the response's status line and headers arrive, and its JSON body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        began = time.perf_counter()
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        elapsed = time.perf_counter() - began
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{response.status}: {body[:500]!r}")
        return elapsed, json.loads(body)
    finally:
        conn.close()


def scaled_to_zero(cluster: Cluster, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while any(c.function == name for c in cluster.status().containers):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} kept a container for {timeout:g} s")
        time.sleep(0.1)
    time.sleep(0.3)  # its process gone too, not only unlisted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=10, help="cold starts per variant (at least 5)")
    reps = max(5, parser.parse_args().reps)

    cluster = Cluster()
    try:
        hosts = cluster.deploy(APP)
        host = {name: hosts[f"{name}.predict"] for name in CLASSES}
        first = {name: timed_get(cluster.http_port, host[name])[0] for name in CLASSES}
        cold: dict[str, list[float]] = {name: [] for name in CLASSES}
        built: dict[str, list[float]] = {name: [] for name in CLASSES}
        warm: list[float] = []
        for _ in range(reps):
            for name in CLASSES:
                scaled_to_zero(cluster, name)
                elapsed, body = timed_get(cluster.http_port, host[name])
                cold[name].append(elapsed)
                built[name].append(body["build_seconds"])
                if name == "Snapshotted":  # at once, before the container's second of idleness is up
                    warm.append(timed_get(cluster.http_port, host[name])[0])
    finally:
        cluster.close()

    base = statistics.median(cold["Plain"])
    print(f"cold start, request to first byte, {reps} repetitions, {os.cpu_count()} cores")
    print(f"{'variant':<34} {'median ms':>10} {'p95 ms':>8} {'vs plain':>9}")
    rows = {
        "with memory snapshot": cold["Snapshotted"],
        "without (imports torch, builds)": cold["Plain"],
        "warm container (for scale)": warm,
    }
    for label, values in rows.items():
        median = statistics.median(values)
        print(f"{label:<34} {median * 1000:>10.1f} {p(values, 0.95) * 1000:>8.1f} {median / base:>8.2f}x")
    print(
        f"first request after the deploy: {first['Snapshotted'] * 1000:.0f} ms with the snapshot "
        f"(makes it), {first['Plain'] * 1000:.0f} ms without"
    )
    print(
        "snap=True hook (building the model), as measured where it ran: "
        f"{statistics.median(built['Snapshotted']):.2f} s in the template (OpenMP on one thread), "
        f"{statistics.median(built['Plain']):.2f} s median in the containers without"
    )


if __name__ == "__main__":
    main()
