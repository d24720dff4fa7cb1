"""Container networking: how long attach() (and detach()) take per container.

    sudo python bench/network_attach.py [--reps 50]

Starts a ContainerNetwork on a scratch bridge and subnet, then attaches that many processes in
network namespaces of their own (`unshare --net sleep`), one after another, then all at once,
and prints medians and p95 in milliseconds. Needs root, iproute2, nftables, iptables.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worker.network import ContainerNetwork, NetworkConfig


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def in_namespaces(count: int) -> list[subprocess.Popen[bytes]]:
    """Processes of a network namespace each: the containers to attach."""
    return [subprocess.Popen(["unshare", "--net", "sleep", "600"]) for _ in range(count)]


async def main(reps: int, subnet: str) -> None:
    tag = secrets.token_hex(3)
    config = NetworkConfig(worker_id=f"bench-{tag}", work_dir=tempfile.mkdtemp(), subnet=subnet, bridge=f"stkbch{tag}")
    network = ContainerNetwork(config)
    await network.start()
    sleepers = in_namespaces(reps)
    try:
        await asyncio.sleep(0.5)  # every sleeper has unshared
        attach_ms, detach_ms = [], []
        for sleeper in sleepers:
            start = time.perf_counter()
            attachment = await network.attach(sleeper.pid)
            attach_ms.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            await network.detach(attachment)
            detach_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        await asyncio.gather(*(network.attach(s.pid) for s in sleepers))
        together_ms = (time.perf_counter() - start) * 1000
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()
        await network.stop()
    print(f"attach      median {statistics.median(attach_ms):6.1f} ms   p95 {p(attach_ms, 0.95):6.1f} ms   ({reps})")
    print(f"detach      median {statistics.median(detach_ms):6.1f} ms   p95 {p(detach_ms, 0.95):6.1f} ms")
    print(f"{reps} attached at once: {together_ms:.0f} ms in all")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--subnet", default="10.254.0.0/16", help="a subnet no interface of this machine uses")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    asyncio.run(main(args.reps, args.subnet))
