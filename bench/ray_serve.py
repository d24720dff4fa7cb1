"""Ray Serve side by side: the warm path's FastAPI hello through stoker and through Ray Serve.

    python bench/ray_serve.py [--reps 3] [--requests 3000] [--concurrency 1,16,64] [--ray-cpus 1]

Serves the quickstart's `hello` three ways, all up at once on loopback, and drives each with
bench/loadgen.py exactly as bench/warm_path.py does (its machinery, imported):
  uvicorn     the app stoker's runtime builds for the endpoint on bare uvicorn: the baseline
  stoker      a `stoker up` cluster, bench/apps/warm_app.py in one warm container
  ray serve   bench/apps/ray_hello.py: a `@serve.deployment` wrapping a FastAPI app with the same
              handler (`@serve.ingress`), one replica, started with `serve.run` in a private local
              Ray cluster bound to 127.0.0.1 that this program starts and shuts down
Ray runs in its own virtual environment, bench/.ray-venv, which the first run creates with
`pip install "ray[serve]"` from PyPI (minutes; later runs reuse it). Ray gets `--ray-cpus`
logical CPUs (default 1: the replica reserves one, as stoker's container is one; the Serve
controller and proxy reserve none), no dashboard, a 100 MiB object store and access logs off.
For every concurrency the variants run back to back and the round repeats `--reps` times; the
table shows medians with ratios to uvicorn and to Ray Serve. "CPU us/req" counts each variant's
own processes only (Ray's: its driver, GCS, raylet, agents, controller, proxy and replica),
warm-up included. Target (benchmarks issue): stoker at least 2x Ray Serve's requests/s and at
most half its p50.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, Cluster, free_port, median, stop
from warm_path import APP, BASELINE, FUNCTION, Sample, Server, Target, process_tree_cpu, run_rounds

RAY = "ray serve"
VARIANTS = (BASELINE, "stoker", RAY)
RAY_VENV = ROOT / "bench" / ".ray-venv"
RAY_APP = ROOT / "bench" / "apps" / "ray_hello.py"
RAY_REQUIREMENT = "ray[serve]"
STOKER_ROLES = frozenset({"up", "scheduler", "worker", "ingress", "container", "template"})
TARGET_RPS_RATIO = 2.0  # stoker's req/s over Ray Serve's, at least
TARGET_P50_RATIO = 0.5  # stoker's p50 over Ray Serve's, at most
STOP_SECONDS = 60.0


def ray_python() -> Path:
    """bench/.ray-venv's interpreter, with Ray Serve installed there first if it is not yet."""
    python = RAY_VENV / "bin" / "python"
    probe = [str(python), "-c", "import ray.serve, fastapi"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing {RAY_REQUIREMENT} into {RAY_VENV} (once; this takes a while)", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(RAY_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", RAY_REQUIREMENT], check=True)
    subprocess.run(probe, check=True)
    return python


def descendants(root: int) -> set[int]:
    return {pid for pid in process_tree_cpu() if _ancestors(pid, root)}


def _ancestors(pid: int, root: int) -> bool:
    """Whether `root` is an ancestor of `pid`."""
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
        if pid == root:
            return True
    return False


class RayServe:
    """bench/apps/ray_hello.py in its own process, with a Ray home and temp dir of its own."""

    def __init__(self, python: Path, cpus: int) -> None:
        # Ray binds its HTTP proxy itself, so the port cannot be handed over as a socket as
        # warm_path's servers are; the short window between closing and Ray binding is acceptable.
        self.port = free_port()
        # Short: Ray puts unix sockets under it, and their paths are limited to 107 bytes.
        self.dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
        env = {
            **os.environ,
            "HOME": self.dir,  # Ray writes ~/.ray/auth_token
            "RAY_USAGE_STATS_ENABLED": "0",
            # Ray's switch for a one-machine cluster: every component binds and talks on 127.0.0.1
            # instead of the address of the machine's network interface.
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        }
        command = [str(python), str(RAY_APP), "--port", str(self.port), "--temp-dir", self.dir, "--num-cpus", str(cpus)]
        self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)

    def close(self) -> None:
        """Stop Serve and Ray, then make sure none of their processes is left."""
        started = descendants(self.process.pid) | {self.process.pid}
        stop(self.process, STOP_SECONDS)
        deadline = time.monotonic() + 10
        while (left := {pid for pid in started if Path(f"/proc/{pid}").exists()}) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in left:  # the ones Ray's shutdown missed, by the ids recorded above
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
        state = f"{len(left)} left running and killed" if left else "none left running"
        print(f"ray serve stopped: {len(started)} processes, {state}", file=sys.stderr, flush=True)


def own_cpu(name: str, sample: Sample) -> float:
    """CPU us/req of this variant's processes only, not the idle others'."""
    roles = {role for role in sample.cpu_by_role if _variant_of(role) == name}
    return sum(sample.cpu_by_role[role] for role in roles)


def _variant_of(role: str) -> str:
    if role == BASELINE:
        return BASELINE
    return "stoker" if role in STOKER_ROLES else RAY


def measure(args: argparse.Namespace, python: Path) -> dict[tuple[str, int], list[Sample]]:
    samples: dict[tuple[str, int], list[Sample]] = {}
    uvicorn: Server | None = None
    cluster: Cluster | None = None
    ray: RayServe | None = None
    try:
        uvicorn = Server("uvicorn")
        cluster = Cluster({"STOKER_RATE_LIMIT_RPS": "0"})
        ray = RayServe(python, args.ray_cpus)
        targets = [
            Target(BASELINE, uvicorn.port, f"127.0.0.1:{uvicorn.port}", uvicorn.process),
            Target("stoker", cluster.http_port, cluster.deploy(APP)[FUNCTION], cluster.process),
            Target(RAY, ray.port, f"127.0.0.1:{ray.port}", ray.process),
        ]
        run_rounds(targets, args, samples)
    finally:
        if ray is not None:
            ray.close()
        if cluster is not None:
            cluster.close()
        if uvicorn is not None:
            uvicorn.close()
    return samples


def report(samples: dict[tuple[str, int], list[Sample]], args: argparse.Namespace) -> None:
    def med(name: str, c: int, metric: str) -> float:
        return median([getattr(s, metric) for s in samples[(name, c)]])

    def cpu(name: str, c: int) -> float:
        return median([own_cpu(name, s) for s in samples[(name, c)]])

    print(
        f"\nRay Serve side by side: GET / on a FastAPI hello, {args.requests} requests per point, median of "
        f"{args.reps} rounds, {os.cpu_count()} cores (load generator included), Ray with {args.ray_cpus} CPU"
    )
    header = (
        f"{'variant':<10} {'c':>3} {'req/s':>8} {'vs uv':>6} {'vs ray':>6} "
        f"{'p50 ms':>7} {'vs uv':>6} {'vs ray':>6} {'p99 ms':>7} {'CPU us/req':>10}"
    )
    print(header)
    print("-" * len(header))
    truncated = False
    for c in args.concurrency:
        base, ray = (med(BASELINE, c, "rps"), med(BASELINE, c, "p50_ms")), (med(RAY, c, "rps"), med(RAY, c, "p50_ms"))
        for name in VARIANTS:
            rps, p50, p99 = (med(name, c, metric) for metric in ("rps", "p50_ms", "p99_ms"))
            mark = "*" if any(s.truncated for s in samples[(name, c)]) else " "
            truncated = truncated or mark == "*"
            print(
                f"{name:<10} {c:>3} {rps:>8.0f}{mark}{rps / base[0]:>5.2f}x {rps / ray[0]:>5.2f}x "
                f"{p50:>7.2f} {p50 / base[1]:>5.2f}x {p50 / ray[1]:>5.2f}x {p99:>7.2f} {cpu(name, c):>10.0f}"
            )
    if truncated:
        print(f"* at least one round hit the {args.time_limit:g} s limit before its {args.requests} requests")

    print()
    for c in args.concurrency:
        rps_ratio = med("stoker", c, "rps") / med(RAY, c, "rps")
        p50_ratio = med("stoker", c, "p50_ms") / med(RAY, c, "p50_ms")
        rps_ok, p50_ok = rps_ratio >= TARGET_RPS_RATIO, p50_ratio <= TARGET_P50_RATIO
        print(
            f"c={c:<3} stoker vs ray serve: {rps_ratio:.2f}x the req/s (target >= {TARGET_RPS_RATIO:g}x: "
            f"{'met' if rps_ok else 'NOT met'}), {p50_ratio:.2f}x the p50 (target <= {TARGET_P50_RATIO:g}x: "
            f"{'met' if p50_ok else 'NOT met'}), {cpu('stoker', c) / cpu(RAY, c):.2f}x the CPU per request"
        )
    high = max(args.concurrency)
    for name in ("stoker", RAY):
        group = samples[(name, high)]
        roles = {role for s in group for role in s.cpu_by_role if _variant_of(role) == name}
        split = {role: median([s.cpu_by_role.get(role, 0.0) for s in group]) for role in roles}
        shown = ", ".join(f"{role} {us:.0f}" for role, us in sorted(split.items(), key=lambda kv: -kv[1]) if us >= 1)
        print(f"{name} CPU us/req at c={high} by process: {shown}")
    worst = max(s.loadgen_cpu_fraction for group in samples.values() for s in group)
    print(f"load generator: at most {worst:.0%} of a core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="rounds (at least 3)")
    parser.add_argument("--requests", type=int, default=3000, help="measured requests per point")
    parser.add_argument("--warmup", type=int, default=500, help="unmeasured requests first (at least 4 per connection)")
    parser.add_argument("--concurrency", default="1,16,64", help="connections, comma-separated")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per point, at most 30")
    parser.add_argument("--ray-cpus", type=int, default=1, help="logical CPUs Ray may schedule on (at least 1)")
    args = parser.parse_args()
    if args.ray_cpus < 1:
        parser.error(f"--ray-cpus must be at least 1 (the replica reserves one CPU), not {args.ray_cpus}")
    try:
        args.concurrency = sorted({int(c) for c in args.concurrency.split(",")})
    except ValueError:
        parser.error(f"--concurrency takes comma-separated integers, not {args.concurrency!r}")
    if args.concurrency[0] < 1 or args.requests < 1:
        parser.error("--concurrency and --requests must be at least 1")
    args.reps = max(3, args.reps)
    args.time_limit = min(30.0, args.time_limit)
    report(measure(args, ray_python()), args)


if __name__ == "__main__":
    main()
