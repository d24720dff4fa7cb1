"""Function calls: what `.remote()`, `.map()` and `.remote_gen()` cost through the scheduler.

    python bench/calls.py [--calls 300] [--map 2000] [--items 20000]

One `stoker up` cluster, one warm container per function (`bench/apps/calls_app.py`, async
functions with @concurrent(max_inputs=64), so container starts are not measured). Prints:
  HTTP GET (baseline)   sequential keep-alive requests to a web endpoint doing the same work
  .remote()             sequential calls: SDK -> scheduler -> container and back, pickled
  .map()                calls/s with 50 inputs in flight
  .remote_gen()         items/s of one generator call (credit-based flow control)
"""

from __future__ import annotations

import argparse
import http.client
import os
import time

from harness import ROOT, Cluster, median, p

APP = ROOT / "bench" / "apps" / "calls_app.py"


def http_latencies(port: int, host: str, count: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    try:
        for i in range(count):
            began = time.perf_counter()
            conn.request("GET", f"/?x={i}", headers={"Host": host})
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            times.append(time.perf_counter() - began)
    finally:
        conn.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--map", type=int, default=2000)
    parser.add_argument("--items", type=int, default=20000)
    args = parser.parse_args()

    cluster = Cluster()
    try:
        hosts = cluster.deploy(APP)
        os.environ["STOKER_SCHEDULER"] = cluster.scheduler
        os.environ["STOKER_TOKEN"] = cluster.token
        import client as modal

        echo = modal.Function.from_name("bench-calls", "echo")
        items = modal.Function.from_name("bench-calls", "items")
        for _ in range(20):  # warm: the containers start, the channels open
            echo.remote(0)
        list(items.remote_gen(10))
        http_latencies(cluster.http_port, hosts["echo_http"], 20)

        web = http_latencies(cluster.http_port, hosts["echo_http"], args.calls)
        remote = []
        for i in range(args.calls):
            began = time.perf_counter()
            assert echo.remote(i) == i
            remote.append(time.perf_counter() - began)

        began = time.perf_counter()
        assert list(echo.map(range(args.map))) == list(range(args.map))
        map_rate = args.map / (time.perf_counter() - began)

        began = time.perf_counter()
        assert sum(1 for _ in items.remote_gen(args.items)) == args.items
        item_rate = args.items / (time.perf_counter() - began)

        base = median(web)
        print(f"{'path':<22}{'median ms':>11}{'p95 ms':>9}{'vs HTTP':>9}")
        print(f"{'HTTP GET (baseline)':<22}{base * 1e3:>11.2f}{p(web, 0.95) * 1e3:>9.2f}{1.0:>8.2f}x")
        ratio = median(remote) / base
        print(f"{'.remote()':<22}{median(remote) * 1e3:>11.2f}{p(remote, 0.95) * 1e3:>9.2f}{ratio:>8.2f}x")
        print(f".map(): {map_rate:,.0f} calls/s ({args.map} inputs, 50 in flight)")
        print(f".remote_gen(): {item_rate:,.0f} items/s ({args.items} items, one call)")
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
