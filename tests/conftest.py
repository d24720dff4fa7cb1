"""Fixtures that run real stoker clusters: `stoker up` as a process, on ephemeral ports."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import httpx
import pytest

from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from worker.sandbox import host_view as sandbox_host_view

APPS = Path(__file__).parent / "apps"
STARTUP_TIMEOUT = 60.0
# Every cluster's HOME is its own, so uv's default cache would be too: share one across clusters
# and test runs, so an image build after the first installs from the cache in about a second.
UV_CACHE_DIR = Path(tempfile.gettempdir()) / "stoker-test-uv-cache"
# Built image layers are shared too (workers lock each build), one directory per checkout (its
# runtime directories hold the checkout's dependencies): the Debian base is built once.
_CHECKOUT = Path(__file__).resolve().parent.parent
IMAGE_DIR = UV_CACHE_DIR.with_name(f"stoker-test-images-{hashlib.sha256(bytes(_CHECKOUT)).hexdigest()[:12]}")
# A host directory every sandbox of the session's workers gets read-write (`--sandbox-bind`), at
# the same path: the files a test and its apps' containers both see (`shared_tmp`).
SHARED_DIR = UV_CACHE_DIR.with_name("stoker-test-shared")


@functools.cache
def default_root() -> Path:
    """The root filesystem of containers with no image, which each worker builds at start into
    its image dir: built into IMAGE_DIR once (about 20 s on a fresh machine), before the first
    daemon starts, so no cluster's start waits for it."""
    from worker.images import ImageBuilder

    return asyncio.run(ImageBuilder(IMAGE_DIR, "tests", str(UV_CACHE_DIR)).default_root(lambda _: None))


def base_env(home: Path) -> dict[str, str]:
    default_root()
    SHARED_DIR.mkdir(exist_ok=True)
    SHARED_DIR.chmod(0o1777)  # the sandboxes' root is a host uid of their own
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOKER_")}
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env["STOKER_UV_CACHE_DIR"] = str(UV_CACHE_DIR)
    env["STOKER_IMAGE_DIR"] = str(IMAGE_DIR)
    env["STOKER_SANDBOX_BIND"] = str(SHARED_DIR)
    return env


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A fresh directory that the test and its apps' containers (in their sandboxes) both see."""
    path = Path(tempfile.mkdtemp(dir=SHARED_DIR))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def stoker_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "client", *args]


class LineReader:
    """Collects a process's output lines in a thread, so tests can wait for one."""

    def __init__(self, stream: object) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for raw in stream:  # type: ignore[attr-defined]
            with self._cond:
                self.lines.append(raw.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, predicate: object, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if predicate(line):  # type: ignore[operator]
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching line; output so far:\n" + "\n".join(self.lines))
                self._cond.wait(left)

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)


def stop_process(process: subprocess.Popen[str], sig: int) -> int:
    """Signal the process, wait for it (killing it after 30 s), return its exit code."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def split_url(url: str) -> tuple[str, str]:
    """(loopback base URL, Host header) for an endpoint URL, so no DNS is needed."""
    parts = urlsplit(url)
    return f"http://127.0.0.1:{parts.port or 80}", parts.netloc


@dataclass
class Cluster:
    home: Path
    state_dir: Path
    process: subprocess.Popen[str] | None = None
    output: LineReader | None = None
    http_port: int = 0
    scheduler: str = ""
    workers: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)  # for `stoker up` and its daemons
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))

    @property
    def env(self) -> dict[str, str]:
        env = {**base_env(self.home), **self.extra_env}
        env["STOKER_SCHEDULER"] = self.scheduler
        return env

    def start(self) -> None:
        self.process = subprocess.Popen(
            stoker_command(
                "up",
                "--http-port",
                "0",
                "--grpc-port",
                "0",
                "--state-dir",
                str(self.state_dir),
                "--workers",
                str(self.workers),
            ),
            env={**base_env(self.home), **self.extra_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = LineReader(self.process.stdout)
        ready = self.output.wait_for(lambda line: line.startswith("ready:"), STARTUP_TIMEOUT)
        self.http_port = int(ready.rsplit(":", 1)[1])
        self.scheduler = self.output.wait_for(lambda line: line.startswith("scheduler:"), 1).split()[1]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        return stop_process(self.process, sig)

    @cached_property
    def token(self) -> str:
        """The workspace token `stoker up` wrote to this cluster's client config (read once: the
        file does not change while the cluster runs)."""
        return str(json.loads((self.home / ".stoker" / "config.json").read_text())["token"])

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata that authenticates a control-plane call with the workspace token."""
        return (("authorization", f"Bearer {self.token}"),)

    def status(self) -> pb.StatusResponse:
        with grpc.insecure_channel(self.scheduler) as channel:
            return pb_grpc.SchedulerStub(channel).Status(pb.StatusRequest(), timeout=10, metadata=self.metadata)

    def warm_containers(self, function: str) -> list[pb.ContainerInfo]:
        """The function's containers that are up and taking requests, as the scheduler reports them."""
        return [c for c in self.status().containers if c.function == function and c.state == "warm"]

    def stoker(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            stoker_command(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def deploy(self, app_file: Path | str, *extra: str) -> dict[str, str]:
        """Deploy and return {function: URL} from what deploy printed."""
        result = self.stoker("deploy", str(APPS / app_file), *extra)
        assert result.returncode == 0, result.stdout + result.stderr
        return parse_endpoints(result.stdout)

    def request(self, method: str, url: str, path: str = "/", **kwargs: object) -> httpx.Response:
        base, host = split_url(url)
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        headers["host"] = host
        return self.client.request(method, base + path, headers=headers, **kwargs)  # type: ignore[arg-type]

    def get(self, url: str, path: str = "/", **kwargs: object) -> httpx.Response:
        return self.request("GET", url, path, **kwargs)

    def post(self, url: str, path: str = "/", **kwargs: object) -> httpx.Response:
        return self.request("POST", url, path, **kwargs)


def parse_endpoints(output: str) -> dict[str, str]:
    endpoints = {}
    for line in output.splitlines():
        if line.startswith("Created web function "):
            name, url = line[len("Created web function ") :].split(" => ")
            endpoints[name] = url.strip()
    return endpoints


def body_chunks(total: int, size: int = 1024 * 1024) -> Iterator[bytes]:
    """A request body of `total` bytes, as pieces of `size` bytes (the last one shorter)."""
    block = b"u" * size
    sent = 0
    while sent < total:
        piece = block[: total - sent]
        sent += len(piece)
        yield piece


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def worker_pid(cluster: Cluster, worker_id: str = "") -> int:
    """The pid of a `stoker worker` process of the cluster (the one named `worker_id`, if given);
    0 when there is none."""
    assert cluster.process is not None
    for pid in descendants(cluster.process.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"client" in argv and b"worker" in argv and (not worker_id or worker_id.encode() in argv):
            return pid
    return 0


def live_worker_pid(cluster: Cluster, worker_id: str = "") -> int:
    """worker_pid(), for a worker that must be there: never 0, which os.kill() takes for the
    whole process group (pytest included)."""
    pid = worker_pid(cluster, worker_id)
    if not pid:
        raise AssertionError(f"no process for worker {worker_id or '(any)'}")
    return pid


def host_pid(record: object, missing_ok: bool = False) -> int:
    """The host's pid of the live process a test app named with `identity.pid()`
    ("NAMESPACE:PID:CONTAINER", tests/apps/identity.py); 0 when it is gone and `missing_ok`."""
    namespace, inner = str(record).split(":")[:2]
    found = sandbox_host_view.host_pid(namespace, int(inner))
    if found or missing_ok:
        return found
    raise AssertionError(f"no live process is {record!r}")


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(predicate: object, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return bool(predicate())  # type: ignore[operator]


class Serve:
    """A `stoker serve` of an app file, its output read as it comes."""

    def __init__(self, app_file: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            stoker_command("serve", str(app_file)),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        self.output = LineReader(self.process.stdout)

    def url(self, function: str, timeout: float = 60) -> str:
        """The function's URL, once serve is also watching for edits."""
        line = self.output.wait_for(lambda line: line.startswith(f"Created web function {function} => "), timeout)
        self.output.wait_for(lambda line: line.startswith("Serving "), timeout)
        return line.split(" => ")[1]

    def stop(self, sig: int = signal.SIGINT) -> int:
        return stop_process(self.process, sig)


def start_extra_ingress(cluster: Cluster, directory: Path) -> tuple[subprocess.Popen[str], int]:
    """Another ingress for `cluster` (with its daemons' environment), its log in `directory`;
    (its process, its HTTP port)."""
    port_file = directory / "ingress-2.port"
    env = dict(cluster.env)
    secret = cluster.state_dir / "cluster-secret"
    if secret.exists():
        env["STOKER_CLUSTER_SECRET"] = secret.read_text().strip()
    log = (directory / "ingress-2.log").open("w")
    process = subprocess.Popen(
        stoker_command("ingress", "--port", "0", "--scheduler", cluster.scheduler, "--port-file", str(port_file)),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log.close()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            return process, int(json.loads(port_file.read_text())["http"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    stop_process(process, signal.SIGTERM)
    raise AssertionError("the second ingress did not start:\n" + (directory / "ingress-2.log").read_text())


def run_program(cluster: Cluster, code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a plain Python program against the cluster (it finds it through STOKER_SCHEDULER and
    the client config, like any program on this machine), with `args` as its sys.argv[1:]."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def last_json(result: subprocess.CompletedProcess[str]) -> object:
    """What a program printed last, as JSON; it must have exited 0."""
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def program_result(cluster: Cluster, code: str, *args: str) -> object:
    """What the program printed last, as JSON; it must exit 0."""
    return last_json(run_program(cluster, code, *args))


def make_cluster(tmp_path: Path) -> Cluster:
    return Cluster(home=tmp_path / "home", state_dir=tmp_path / "state")


@contextlib.contextmanager
def running_cluster(directory: Path, workers: int = 1, **extra_env: str) -> Iterator[Cluster]:
    """A cluster of `workers` workers in `directory` (home and state), its daemons given
    `extra_env`, stopped after."""
    c = make_cluster(directory)
    c.workers = workers
    c.extra_env.update(extra_env)
    c.home.mkdir()
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path) as c:
        yield c


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as c:
        yield c


@pytest.fixture(scope="session")
def debian_rootfs() -> Path:
    """A minimal Debian bookworm root filesystem with python3, for sandboxes and registry images,
    read only: STOKER_TEST_ROOTFS names one; else the default root the session's workers use."""
    given = os.environ.get("STOKER_TEST_ROOTFS")
    if given:
        return Path(given)
    return default_root()
