"""Control plane at scale: one real scheduler, 1,000 simulated workers, 10,000 warm containers.

    python bench/control_plane.py [--workers 1000] [--functions 10] [--per-function 1000]
                                  [--pin] [--profile DIR [--native]]

Starts `python -m client scheduler` alone on a loopback port, then from this process (grpc.aio,
one channel and one TCP connection per worker, as separate worker processes would have) opens a
WorkerConnect stream per simulated worker: it registers (every 10th declares 4 GPUs), heartbeats
every 2 s with its container ids, and answers every StartContainer with a ContainerStarted at
127.0.0.1:1 (no real container), and every BuildImage with "built" (as if built before). One
deploy of `--functions` web functions with `min_containers=--per-function` makes the scheduler
start them all. Then it measures:

  bring-up   Deploy call to every container warm in the scheduler's Status, and the longest
             time a cheap RPC waited meanwhile (how long the scheduler's loop stood still)
  idle       scheduler CPU over 10 s with every worker heartbeating and no requests
  placement  one simulated ingress stream: Acquire, and Release after each Assignment, with
             `--outstanding` in flight, for `--placements` placements or `--seconds`

CPU is utime+stime from /proc, as % of one core: the whole scheduler, and its event loop thread
alone (the rest is grpc's threads). This simulator's CPU and the whole machine's are shown beside
it: on a small machine both processes share the cores, and a busy simulator takes CPU the
scheduler would get. `--pin` gives the scheduler one core to itself and the simulator the rest.
`--profile DIR` runs py-spy on the scheduler in each phase and prints its top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc
from harness import ROOT, p, stop

from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from protos.batches import ingress_message_batches
from protos.channels import CLUSTER_SECRET_HEADER

T = TypeVar("T")
HEARTBEAT_SECONDS = 2.0  # what real workers use
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),  # as worker/server.py sets it
    ("grpc.use_local_subchannel_pool", 1),  # one TCP connection per worker, as separate processes have
]
APP_SOURCE = b"""import stoker

app = stoker.App("control-bench")
"""
GPU = pb.Gpu(name="NVIDIA H100 80GB HBM3", memory_bytes=80 * 1024**3)
TARGET_PLACEMENTS = 5_000.0  # per second
TARGET_IDLE_CPU = 25.0  # % of one core


# ---------------------------------------------------------------- CPU accounting


def _jiffies(stat: str) -> int:
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of every thread of the process, in seconds."""
    return _jiffies(Path(f"/proc/{pid}/stat").read_text()) / os.sysconf("SC_CLK_TCK")


def thread_seconds(pid: int | str = "self") -> dict[str, float]:
    """{thread id: utime + stime in seconds} of each live thread of the process."""
    seconds = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # it may have ended meanwhile
            seconds[task.name] = _jiffies((task / "stat").read_text()) / os.sysconf("SC_CLK_TCK")
    return seconds


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, which is already in user
    return total - idle, total


class CpuWindow:
    """CPU used by the scheduler, by this process and by the machine between start and stop; and
    by the event loop thread of each, which says whether that loop was saturated."""

    def __init__(self, scheduler_pid: int) -> None:
        self.pid = scheduler_pid
        self.wall = time.perf_counter()
        self.sched = cpu_seconds(scheduler_pid)
        self.me = cpu_seconds()
        self.sched_threads = thread_seconds(scheduler_pid)
        self.my_threads = thread_seconds()
        self.busy, self.total = machine_busy()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.wall
        busy, total = machine_busy()

        def loop_thread(pid: int, before: dict[str, float], after: dict[str, float]) -> float:
            # The main thread runs the event loop in both processes; grpc's threads are the others.
            return 100 * (after.get(str(pid), 0.0) - before.get(str(pid), 0.0)) / wall

        return {
            "wall": wall,
            "scheduler": 100 * (cpu_seconds(self.pid) - self.sched) / wall,
            "simulator": 100 * (cpu_seconds() - self.me) / wall,
            "scheduler_loop": loop_thread(self.pid, self.sched_threads, thread_seconds(self.pid)),
            "simulator_loop": loop_thread(os.getpid(), self.my_threads, thread_seconds()),
            "machine": 100 * (busy - self.busy) / max(1, total - self.total),  # % of all cores
        }


# ---------------------------------------------------------------- the scheduler process


@dataclass
class Scheduler:
    process: subprocess.Popen[bytes]
    address: str
    secret: str
    token: str
    log: Path


def start_scheduler(home: Path, log_level: str) -> Scheduler:
    state, port_file, log = home / "state", home / "port.json", home / "scheduler.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "client", "scheduler", "--port", "0", "--port-file", str(port_file),
             "--state-dir", str(state), "--log-level", log_level],
            cwd=ROOT, env={**os.environ, "HOME": str(home)}, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text()):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the scheduler did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)
    port = json.loads(port_file.read_text())["grpc"]
    secret = (state / "cluster-secret").read_text().strip()
    token = (state / "workspace-token").read_text().strip()
    return Scheduler(process, f"127.0.0.1:{port}", secret, token, log)


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of the process onto `cpus`; threads it starts later inherit it."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), cpus)


# ---------------------------------------------------------------- simulated workers


@dataclass
class Fleet:
    """What the simulated workers did, summed."""

    starts: int = 0
    stops: int = 0
    heartbeats: int = 0
    lost: int = 0  # streams the scheduler ended (each worker then registers anew, as real ones do)
    all_started: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0


class _Drain(Generic[T]):
    """What lands in a queue, as a request stream. A class rather than an async generator: when
    the scheduler ends a stream, grpc would close a generator that is still awaiting, noisily."""

    def __init__(self, outbox: asyncio.Queue[T]) -> None:
        self.outbox = outbox

    def __aiter__(self) -> _Drain[T]:
        return self

    async def __anext__(self) -> T:
        return await self.outbox.get()


class SimWorker:
    """A worker without containers: registers, heartbeats, and reports every start as done."""

    def __init__(self, index: int, address: str, secret: str, fleet: Fleet) -> None:
        self.fleet = fleet
        self.metadata = ((CLUSTER_SECRET_HEADER, secret),)
        self.channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.gpus = [pb.Gpu(index=i, uuid=f"GPU-{index}-{i}", name=GPU.name, memory_bytes=GPU.memory_bytes)
                     for i in range(4 if index % 10 == 0 else 0)]  # fmt: skip
        self.register = pb.WorkerRegister(
            worker_id=f"sim-{index:05d}", hostname=f"sim-{index}", cpu_count=64, memory_bytes=256 << 30, gpus=self.gpus
        )
        self.containers: dict[str, None] = {}

    async def run(self) -> None:
        """Hold the stream; when the scheduler ends it, register anew after 0.1 s, as
        protos.channels.stay_connected does (the old containers are gone by then)."""
        while True:
            self.containers.clear()
            try:
                await self._connect()
            except grpc.aio.AioRpcError:
                pass
            self.fleet.lost += 1
            await asyncio.sleep(0.1)

    async def _connect(self) -> None:
        outbox: asyncio.Queue[pb.WorkerMessage] = asyncio.Queue()
        outbox.put_nowait(pb.WorkerMessage(register=self.register))
        heartbeat = asyncio.create_task(self._heartbeat(outbox), name=f"heartbeat-{self.register.worker_id}")
        try:
            call = pb_grpc.SchedulerStub(self.channel).WorkerConnect(_Drain(outbox), metadata=self.metadata)
            async for command in call:
                kind = command.WhichOneof("kind")
                if kind == "start":
                    self.containers[command.start.container_id] = None
                    started = pb.ContainerStarted(container_id=command.start.container_id, address="127.0.0.1:1")
                    outbox.put_nowait(pb.WorkerMessage(started=started))
                    self.fleet.starts += 1
                    if self.fleet.starts >= self.fleet.expected:
                        self.fleet.all_started.set()
                elif kind == "build":
                    # As a worker that has the image already: built, nothing to print.
                    built = pb.ImageBuildEvent(image_id=command.build.image_id, done=True)
                    outbox.put_nowait(pb.WorkerMessage(image=built))
                elif kind == "stop":
                    self.containers.pop(command.stop.container_id, None)
                    exited = pb.ContainerExited(container_id=command.stop.container_id, reason="stopped")
                    outbox.put_nowait(pb.WorkerMessage(exited=exited))
                    self.fleet.stops += 1
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, outbox: asyncio.Queue[pb.WorkerMessage]) -> None:
        # A random phase, so that 1,000 workers beat evenly rather than all at once.
        next_beat = time.monotonic() + random.uniform(0, HEARTBEAT_SECONDS)
        while True:
            await asyncio.sleep(max(0.0, next_beat - time.monotonic()))
            next_beat += HEARTBEAT_SECONDS
            for gpu in self.gpus:
                gpu.utilization = random.randrange(100)
            beat = pb.WorkerHeartbeat(gpus=self.gpus)
            outbox.put_nowait(pb.WorkerMessage(heartbeat=beat))
            self.fleet.heartbeats += 1


# ---------------------------------------------------------------- the simulated ingress


@dataclass
class Placements:
    assigned: int
    rejected: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.assigned / self.seconds


class SimIngress:
    """One ingress stream that places requests and releases each slot as soon as it gets it."""

    def __init__(self, address: str, secret: str) -> None:
        self.channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.outbox: asyncio.Queue[pb.IngressMessage] = asyncio.Queue()
        self.outbox.put_nowait(pb.IngressMessage(hello=pb.IngressHello(ingress_id="bench-ingress", scheme="http")))
        stub = pb_grpc.SchedulerStub(self.channel)
        metadata = ((CLUSTER_SECRET_HEADER, secret),)
        self.batches = aiter(stub.IngressConnect(ingress_message_batches(self.outbox), metadata=metadata))
        self.events: deque[pb.IngressEvent] = deque()  # of the last batch, not yet taken
        self.function_ids: list[str] = []
        self.ids = itertools.count(1)

    async def _next(self, within: float) -> pb.IngressEvent:
        while not self.events:
            self.events.extend((await asyncio.wait_for(anext(self.batches), within)).events)
        event = self.events.popleft()
        if event.WhichOneof("kind") == "routes":
            self.function_ids = [route.function_id for route in event.routes.routes]
            self.outbox.put_nowait(pb.IngressMessage(routes_applied=event.routes.version))
        return event

    async def connect(self) -> None:
        while not self.function_ids:
            await self._next(within=10)

    async def place(self, count: int, seconds: float, outstanding: int) -> Placements:
        sent_at: dict[int, float] = {}
        latencies: list[float] = []
        assigned = rejected = 0
        began = time.perf_counter()
        deadline = began + seconds

        def acquire() -> None:
            slot_id = next(self.ids)
            sent_at[slot_id] = time.perf_counter()
            function_id = self.function_ids[slot_id % len(self.function_ids)]
            message = pb.Acquire(slot_id=slot_id, function_id=function_id)
            self.outbox.put_nowait(pb.IngressMessage(acquire=message))

        sent = min(count, outstanding)
        for _ in range(sent):
            acquire()
        while sent_at:
            event = await self._next(within=30)
            kind = event.WhichOneof("kind")
            now = time.perf_counter()
            if kind == "assignment":
                slot_id = event.assignment.slot_id
                self.outbox.put_nowait(pb.IngressMessage(release=pb.Release(slot_id=slot_id)))
                assigned += 1
            elif kind == "rejection":
                slot_id = event.rejection.slot_id
                rejected += 1
            else:
                continue
            latencies.append(now - sent_at.pop(slot_id))
            if sent < count and now < deadline:
                acquire()
                sent += 1
        return Placements(assigned, rejected, time.perf_counter() - began, latencies)


# ---------------------------------------------------------------- the run


def definition(functions: int, per_function: int) -> pb.AppDefinition:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("app.py", date_time=(1980, 1, 1, 0, 0, 0)), APP_SOURCE)
    specs = [
        pb.FunctionSpec(
            name=f"f{i}",
            image=pb.ImageSpec(base="debian_slim", python_version="3.11"),
            min_containers=per_function,
            max_inputs=1000,
            timeout=60,
            web=pb.WebEndpoint(kind="fastapi_endpoint", method="GET"),
        )
        for i in range(functions)
    ]
    return pb.AppDefinition(name="control-bench", entry="app.py", functions=specs, bundle=buffer.getvalue())


async def poll_until(check: Callable[[], Awaitable[bool]], within: float, what: str, every: float = 0.25) -> float:
    """Poll `check()` until it is true; the seconds that took. Raises after `within` seconds."""
    began = time.perf_counter()
    while not await check():
        if time.perf_counter() - began > within:
            raise TimeoutError(f"{what} did not happen within {within:.0f} s")
        await asyncio.sleep(every)
    return time.perf_counter() - began


class Probe:
    """A cheap RPC (ListApps) every 0.2 s: the slowest answer is how long the scheduler's event
    loop stood still, during which it read no heartbeat and placed no request."""

    def __init__(self, stub: pb_grpc.SchedulerAsyncStub, metadata: tuple[tuple[str, str], ...]) -> None:
        self.stub = stub
        self.metadata = metadata
        self.worst = 0.0

    async def run(self) -> None:
        while True:
            began = time.perf_counter()
            await self.stub.ListApps(pb.ListAppsRequest(), metadata=self.metadata, timeout=300)
            self.worst = max(self.worst, time.perf_counter() - began)
            await asyncio.sleep(0.2)


_LINE = re.compile(r":\d+\)$")
_ROOTS = ("Runner.run ", "Thread.run ")


class Profiler:
    """py-spy on the scheduler for each phase (`--profile DIR`), summarised as top functions."""

    RATE = 100  # samples per second

    def __init__(self, directory: Path | None, pid: int, native: bool = False) -> None:
        self.directory = directory
        self.pid = pid
        # --native shows which C functions (grpc core, uvloop, syscalls) the time goes to, but
        # py-spy must then pause the scheduler for every sample.
        self.mode = ["--native"] if native else ["--nonblocking"]
        self.phases: list[tuple[str, Path, float]] = []

    @contextlib.asynccontextmanager
    async def phase(self, name: str) -> AsyncIterator[None]:
        if self.directory is None:
            yield
            return
        out = self.directory / f"{name}.txt"
        command = [str(Path(sys.executable).parent / "py-spy"), "record", "-f", "raw", "-r", str(self.RATE),
                   *self.mode, "--pid", str(self.pid), "-o", str(out)]  # fmt: skip
        with (self.directory / f"{name}.log").open("wb") as log:
            # Not the loop's own spawn: from uvloop, with grpc's threads running, py-spy at times
            # never started (an empty log, no samples).
            spy = await asyncio.to_thread(subprocess.Popen, command, stdout=log, stderr=log)
        began = time.perf_counter()
        try:
            yield
        finally:
            if spy.poll() is None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
            await asyncio.to_thread(spy.wait, 30)
            self.phases.append((name, out, time.perf_counter() - began))

    def report(self, top: int = 10) -> None:
        for name, path, seconds in self.phases:
            if not path.exists():
                log = path.with_suffix(".log").read_text().strip().splitlines()
                print(f"\nprofile {name}: py-spy wrote nothing: {log[-1] if log else ''}")
                continue
            leaf: Counter[str] = Counter()
            inclusive: Counter[str] = Counter()
            total = 0
            for line in path.read_text().splitlines():
                stack, _, samples = line.rpartition(" ")
                frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
                # What runs under the event loop (or a thread's run()) is what the scheduler does;
                # a sample that ends at that frame is in native code: uvloop, grpc core, protobuf.
                roots = [i for i, frame in enumerate(frames) if frame.startswith(_ROOTS)]
                if roots:
                    root = frames[roots[-1]]
                    frames = frames[roots[-1] + 1 :] or [f"[native, under {root}]"]
                total += int(samples)
                leaf[frames[-1]] += int(samples)
                for frame in set(frames):
                    inclusive[frame] += int(samples)
            busy = 100 * total / (seconds * self.RATE)
            print(f"\nprofile {name}: {total} samples in {seconds:.1f} s (threads busy: {busy:.0f} % of a core)")
            for title, counts in (("self", leaf), ("inclusive", inclusive)):
                print(f"  top {title}:")
                for frame, count in counts.most_common(top):
                    print(f"    {100 * count / max(1, total):5.1f} %  {frame}")


async def bench(scheduler: Scheduler, args: argparse.Namespace) -> list[tuple[str, str, str, str]]:
    pid = scheduler.process.pid
    control = grpc.aio.insecure_channel(scheduler.address, options=[("grpc.max_receive_message_length", 1 << 27)])
    stub = pb_grpc.SchedulerStub(control)
    auth = (("authorization", f"Bearer {scheduler.token}"),)
    profiler = Profiler(args.profile, pid, args.native)
    total = args.functions * args.per_function
    fleet = Fleet(expected=total)
    workers = [SimWorker(i, scheduler.address, scheduler.secret, fleet) for i in range(args.workers)]
    tasks = [asyncio.create_task(w.run(), name=f"worker-{i}") for i, w in enumerate(workers)]
    probe = Probe(stub, auth)
    ingress: SimIngress | None = None
    try:

        async def registered() -> bool:
            status = await stub.Status(pb.StatusRequest(), metadata=auth, timeout=60)
            return len(status.workers) == int(args.workers)

        up = await poll_until(registered, 60, f"{args.workers} workers registering", every=0.5)
        print(f"{args.workers} workers registered in {up:.1f} s", flush=True)
        await asyncio.sleep(2 * HEARTBEAT_SECONDS)  # every worker has sent heartbeats

        # -------- bring-up: one deploy, `total` containers started and reported warm
        async def all_warm() -> bool:
            status = await stub.Status(pb.StatusRequest(), metadata=auth, timeout=120)
            warm = sum(c.state == "warm" for c in status.containers)
            return warm >= total and len(status.workers) == int(args.workers)

        async with profiler.phase("bringup"):
            probing = asyncio.create_task(probe.run(), name="probe")
            await asyncio.sleep(0.5)
            lost_before = fleet.lost
            began = time.perf_counter()
            window = CpuWindow(pid)
            events = stub.Deploy(
                pb.DeployRequest(app=definition(args.functions, args.per_function)), metadata=auth, timeout=600
            )
            deployed = pb.DeployResponse()
            async for event in events:
                if event.WhichOneof("kind") == "deployed":
                    deployed = event.deployed
            deploy_s = time.perf_counter() - began
            await asyncio.wait_for(fleet.all_started.wait(), timeout=300)
            await poll_until(all_warm, 300, f"{total} containers warm", every=1.0)
            warm_s = time.perf_counter() - began
            bring_up = window.stop()
            probing.cancel()
            await asyncio.gather(probing, return_exceptions=True)
        dropped = fleet.lost - lost_before
        print(
            f"deployed v{deployed.version}: Deploy returned in {deploy_s:.1f} s, all {total} warm by {warm_s:.1f} s; "
            f"{fleet.starts} StartContainer in all, {dropped} workers dropped and re-registered, "
            f"longest stall {probe.worst:.1f} s",
            flush=True,
        )

        # -------- idle: every worker heartbeating, no requests
        await asyncio.sleep(args.settle)
        beats = fleet.heartbeats
        async with profiler.phase("idle"):
            window = CpuWindow(pid)
            await asyncio.sleep(args.idle_seconds)
            idle = window.stop()
        beat_rate = (fleet.heartbeats - beats) / idle["wall"]
        print(f"idle: {beat_rate:.0f} heartbeats/s, scheduler {idle['scheduler']:.1f} % of a core", flush=True)

        # -------- placement: one ingress stream, Acquire and Release, pipelined
        ingress = SimIngress(scheduler.address, scheduler.secret)
        await ingress.connect()
        await ingress.place(min(2_000, args.placements), 10, args.outstanding)  # warm-up, not counted
        async with profiler.phase("placement"):
            window = CpuWindow(pid)
            run = await ingress.place(args.placements, args.seconds, args.outstanding)
            busy = window.stop()
        print(
            f"placement: {run.assigned} assigned, {run.rejected} rejected in {run.seconds:.2f} s; Acquire to "
            f"Assignment p50 {p(run.latencies, 0.5) * 1000:.1f} ms, p99 {p(run.latencies, 0.99) * 1000:.1f} ms "
            f"with {args.outstanding} outstanding",
            flush=True,
        )

        status = await stub.Status(pb.StatusRequest(), metadata=auth, timeout=120)
        warm_end = sum(c.state == "warm" for c in status.containers)
        print(
            f"at the end: {len(status.workers)} workers, {warm_end} warm containers, {fleet.lost} worker streams "
            f"ended by the scheduler in all, {fleet.stops} StopContainer",
            flush=True,
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        closing = [w.channel.close(None) for w in workers] + [control.close(None)]
        if ingress is not None:
            closing.append(ingress.channel.close(None))
        await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), timeout=30)
    profiler.report()

    def ok(met: bool) -> str:
        return "yes" if met else "NO"

    def cpu(w: dict[str, float]) -> str:
        return (
            f"sched {w['scheduler']:.0f} (loop {w['scheduler_loop']:.0f}) / "
            f"sim {w['simulator']:.0f} (loop {w['simulator_loop']:.0f}) / machine {w['machine']:.0f}"
        )

    per_core = run.rate / max(0.01, busy["scheduler"] / 100)
    return [
        (
            f"placements/s (1 ingress, {args.outstanding} outstanding)",
            f"{run.rate:,.0f}",
            f">= {TARGET_PLACEMENTS:,.0f}",
            ok(run.rate >= TARGET_PLACEMENTS and run.rejected == 0),
        ),
        ("  placements per scheduler CPU-second", f"{per_core:,.0f}", "", ""),
        ("  CPU % of a core (loop thread); machine % of all", cpu(busy), "", ""),
        (
            f"scheduler CPU, {args.workers} workers heartbeating",
            f"{idle['scheduler']:.1f} % of a core",
            f"< {TARGET_IDLE_CPU:.0f} %",
            ok(idle["scheduler"] < TARGET_IDLE_CPU),
        ),
        ("  CPU % of a core (loop thread); machine % of all", cpu(idle), "", ""),
        (f"bring-up: Deploy to {total:,} warm", f"{warm_s:.1f} s", "", ""),
        ("  Deploy RPC returned after", f"{deploy_s:.1f} s", "", ""),
        ("  longest scheduler stall (ListApps probe)", f"{probe.worst:.1f} s", "", ""),
        ("  workers dropped (missed heartbeats), re-registered", f"{dropped}", "", ""),
        ("  CPU % of a core (loop thread); machine % of all", cpu(bring_up), "", ""),
    ]


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """On uvloop when it is installed, as the daemons run: the default loop costs the simulator
    more CPU per message, which on a small machine is CPU the scheduler does not get."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--functions", type=int, default=10)
    parser.add_argument("--per-function", type=int, default=1000, help="min_containers of each function")
    parser.add_argument("--placements", type=int, default=50_000, help="at most this many placements")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most this long placing")
    parser.add_argument("--outstanding", type=int, default=256, help="Acquires in flight")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="the idle CPU window")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after bring-up before the idle window")
    parser.add_argument("--log-level", default="warning", help="the scheduler's")
    parser.add_argument("--pin", action="store_true", help="the scheduler on CPU 0 alone, this simulator on the rest")
    parser.add_argument("--profile", type=Path, help="run py-spy on the scheduler in each phase; raw output here")
    parser.add_argument("--native", action="store_true", help="with --profile: native frames too (pauses it)")
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)

    before = machine_busy()
    time.sleep(1)
    after = machine_busy()
    load = 100 * (after[0] - before[0]) / max(1, after[1] - before[1])
    with tempfile.TemporaryDirectory(prefix="stoker-control-") as home:
        scheduler = start_scheduler(Path(home), args.log_level)
        cpus = sorted(os.sched_getaffinity(0))
        if args.pin and len(cpus) > 1:
            pin(scheduler.process.pid, {cpus[0]})
            pin(os.getpid(), set(cpus[1:]))
        print(
            f"scheduler pid {scheduler.process.pid} at {scheduler.address}; {os.cpu_count()} cores, "
            f"{load:.0f} % busy before the start",
            flush=True,
        )
        try:
            rows = run_loop(bench(scheduler, args))
        except BaseException:
            print(f"the scheduler's log ends:\n{scheduler.log.read_text()[-3000:]}", file=sys.stderr)
            raise
        finally:
            stop(scheduler.process, 30)
    print()
    print(
        f"control plane: {args.workers} workers, {args.functions * args.per_function:,} warm containers, "
        + (
            f"scheduler pinned to 1 core, simulator to {len(cpus) - 1}"
            if args.pin and len(cpus) > 1
            else f"{os.cpu_count()} cores shared by the scheduler and this simulator"
        )
        + (" (py-spy running: figures perturbed)" if args.profile else "")
    )
    print(f"| {'measure':<54} | {'result':<52} | {'target':<8} | met |")
    print(f"|{'-' * 56}|{'-' * 54}|{'-' * 10}|-----|")
    for name, value, target, met in rows:
        print(f"| {name:<54} | {value:<52} | {target:<8} | {met:<3} |")


if __name__ == "__main__":
    main()
