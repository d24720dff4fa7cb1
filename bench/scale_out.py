"""Scale-out: a burst of 200 concurrent one-second requests against a cold function.

    python bench/scale_out.py [--reps 3] [--requests 200] [--worker-cpus N]

The function (bench/apps/scale_app.py) takes one input per container (max_inputs 1, the default)
and may have at most 50 containers. Each repetition deploys a new version (no containers: a cold
start), waits until the previous version's containers are gone, then opens every connection at
once and sends `GET /?seconds=1` on each. It reports:
  all served    seconds from the burst to the last response
  peak          the most live (starting or warm) containers `stoker status` showed, polled every
                50 ms during the burst, and the distinct containers the responses named
  to 50 warm    seconds from the burst until status first showed the peak number of warm containers
  started/s     containers serving per second: distinct containers over the time from the burst to the
                last container's first request starting (the endpoint reports its start time)
Baseline: the ideal, every slot busy from t=0: ceil(200 / C) x 1 s, where C is the containers
the worker may run at once: 50, or fewer when their CPU requests (Modal's default 0.125 of a
core each) do not fit its cores (scheduler/resources.py; 16 on 2 cores). --worker-cpus gives the
worker that many cores to place against (8: room for all 50), as `--cpus` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field

from harness import ROOT, Cluster, median

from scheduler.resources import DEFAULT_CPU

APP = ROOT / "bench" / "apps" / "scale_app.py"
APP_NAME = "bench-scale"
FUNCTION = "hold"
MAX_CONTAINERS = 50
HOLD_SECONDS = 1.0
BURST_DEADLINE = 120.0  # seconds a burst may take before the benchmark gives up
POLL_EVERY = 0.05


@dataclass
class Served:
    status: int
    done: float  # seconds from the burst
    container: str = ""  # the id of the container that served it
    start: float = 0.0  # wall clock, when the endpoint began the request


@dataclass
class Burst:
    served: list[Served]
    began_wall: float
    # (seconds from the burst, live containers, warm containers, queued requests)
    polls: list[tuple[float, int, int, int]] = field(default_factory=list)


async def one_request(port: int, host: str, began: float) -> Served:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET /?seconds={HOLD_SECONDS} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read(-1)  # until the server closes: one small response
        done = time.perf_counter() - began
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if status != 200:
        return Served(status, done)
    answer = json.loads(body)
    return Served(status, done, answer["container"], answer["start"])


async def burst(port: int, host: str, count: int) -> tuple[list[Served], float]:
    began = time.perf_counter()
    began_wall = time.time()
    tasks = [one_request(port, host, began) for _ in range(count)]
    served = await asyncio.wait_for(asyncio.gather(*tasks), BURST_DEADLINE)
    return served, began_wall


def containers(cluster: Cluster) -> tuple[int, int, int]:
    """(live, warm, queued) for the benchmark's function, counting every version."""
    status = cluster.status()
    mine = [c for c in status.containers if c.app_name == APP_NAME and c.function == FUNCTION]
    queued = sum(f.queued for f in status.functions if f.app_name == APP_NAME and f.function == FUNCTION)
    live = sum(1 for c in mine if c.state in ("starting", "warm"))
    return live, sum(1 for c in mine if c.state == "warm"), queued


def wait_for_no_containers(cluster: Cluster, limit: float = 60.0) -> None:
    """Until no container of the app is listed in any state, draining ones included."""
    deadline = time.monotonic() + limit
    while left := [c.state for c in cluster.status().containers if c.app_name == APP_NAME]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"containers of the previous version still up after {limit:.0f} s: {left}")
        time.sleep(0.1)


def poll(cluster: Cluster, began: float, stop: threading.Event, into: list[tuple[float, int, int, int]]) -> None:
    for _ in range(int(BURST_DEADLINE / POLL_EVERY)):
        live, warm, queued = containers(cluster)
        into.append((time.perf_counter() - began, live, warm, queued))
        if stop.wait(POLL_EVERY):
            return


def run_burst(cluster: Cluster, count: int) -> Burst:
    host = cluster.deploy(APP)[FUNCTION]  # a new version: no container yet
    wait_for_no_containers(cluster)
    polls: list[tuple[float, int, int, int]] = []
    stop = threading.Event()
    began = time.perf_counter()
    poller = threading.Thread(target=poll, args=(cluster, began, stop, polls), name="status-poller")
    poller.start()
    try:
        served, began_wall = asyncio.run(burst(cluster.http_port, host, count))
    finally:
        stop.set()
        poller.join(10)
    return Burst(served, began_wall, polls)


@dataclass
class Row:
    all_served: float
    first_served: float
    peak_live: int
    peak_warm: int
    containers: int  # distinct containers that served
    to_peak_warm: float
    started_per_s: float
    failed: int


def summarize(b: Burst) -> Row:
    ok = [s for s in b.served if s.status == 200]
    first_start: dict[int, float] = {}
    for s in ok:
        first_start[s.container] = min(first_start.get(s.container, s.start), s.start)
    ramp = max(first_start.values(), default=b.began_wall) - b.began_wall
    peak_live = max((live for _, live, _, _ in b.polls), default=0)
    peak_warm = max((warm for _, _, warm, _ in b.polls), default=0)
    to_peak = next((t for t, _, warm, _ in b.polls if warm == peak_warm), math.nan)
    return Row(
        all_served=max(s.done for s in b.served),
        first_served=min(s.done for s in b.served),
        peak_live=peak_live,
        peak_warm=peak_warm,
        containers=len(first_start),
        to_peak_warm=to_peak,
        started_per_s=len(first_start) / ramp if ramp > 0 else math.nan,
        failed=len(b.served) - len(ok),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="bursts, each against a fresh deploy")
    parser.add_argument("--requests", type=int, default=200, help="concurrent requests per burst")
    parser.add_argument("--worker-cpus", type=int, default=0, help="cores the worker places against (0: its own)")
    args = parser.parse_args()
    reps, count = max(1, args.reps), max(1, args.requests)

    cores = args.worker_cpus or len(os.sched_getaffinity(0))
    room = min(MAX_CONTAINERS, int(cores / DEFAULT_CPU))
    cluster = Cluster({"STOKER_WORKER_CPUS": str(args.worker_cpus)} if args.worker_cpus else None)
    try:
        # Warm the page cache and the worker's template; not counted.
        asyncio.run(burst(cluster.http_port, cluster.deploy(APP)[FUNCTION], 1))
        rows = [summarize(run_burst(cluster, count)) for _ in range(reps)]
    finally:
        cluster.close()

    ideal = math.ceil(count / room) * HOLD_SECONDS
    print(
        f"scale-out: {count} concurrent {HOLD_SECONDS:.0f}-second requests, max_inputs 1, "
        f"max_containers {MAX_CONTAINERS}, cold; {os.cpu_count()} cores, the worker placing against {cores} "
        f"(room for {room} containers)"
    )
    print(
        f"{'run':<8} {'all served s':>12} {'vs ideal':>9} {'first s':>8} {'peak live':>10} {'peak warm':>10} "
        f"{'ctrs':>5} {'to peak warm s':>15} {'started/s':>10} {'failed':>7}"
    )
    print(f"{'ideal':<8} {ideal:>12.2f} {1:>8.2f}x {HOLD_SECONDS:>8.2f} {room:>10} {room:>10}")
    for i, r in enumerate(rows, 1):
        print(
            f"{f'rep {i}':<8} {r.all_served:>12.2f} {r.all_served / ideal:>8.2f}x {r.first_served:>8.2f} "
            f"{r.peak_live:>10} {r.peak_warm:>10} {r.containers:>5} {r.to_peak_warm:>15.2f} {r.started_per_s:>10.1f} "
            f"{r.failed:>7}"
        )
    m = median([r.all_served for r in rows])
    print(
        f"{'median':<8} {m:>12.2f} {m / ideal:>8.2f}x {median([r.first_served for r in rows]):>8.2f} "
        f"{median([r.peak_live for r in rows]):>10.0f} {median([r.peak_warm for r in rows]):>10.0f} "
        f"{median([r.containers for r in rows]):>5.0f} {median([r.to_peak_warm for r in rows]):>15.2f} "
        f"{median([r.started_per_s for r in rows]):>10.1f} {median([r.failed for r in rows]):>7.0f}"
    )


if __name__ == "__main__":
    main()
