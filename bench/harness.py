"""What every benchmark shares: a stoker cluster started on loopback, deploys, and statistics.

Benchmarks import it as `from harness import ...` (they run as `python bench/NAME.py`, which puts
bench/ first on sys.path) and the repository root is added here so `client` and `protos` import.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from client.app_ref import parse_ref  # noqa: E402
from client.appfile import load_definition  # noqa: E402
from protos import stoker_pb2 as pb  # noqa: E402
from protos import stoker_pb2_grpc as pb_grpc  # noqa: E402


class Cluster:
    """`stoker up` on ephemeral loopback ports, in a temporary state dir, quiet."""

    def __init__(self, env: dict[str, str] | None = None, workers: int = 1) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="stoker-bench-")
        home = Path(self.dir.name)
        self.state_dir = home / "state"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "client", "up", "--http-port", "0", "--grpc-port", "0",
             "--state-dir", str(self.state_dir), "--workers", str(workers), "--no-write-config"],
            env={**os.environ, "HOME": str(home), "STOKER_LOG_LEVEL": "warning", **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.scheduler = ""
        for line in self.process.stdout:
            if line.startswith("scheduler:"):
                self.scheduler = line.split()[1]
            if line.startswith("ready:"):
                self.http_port = int(line.rsplit(":", 1)[1])
                break
        else:
            raise RuntimeError("stoker up did not become ready")
        self.token = (self.state_dir / "workspace-token").read_text().strip()
        self.metadata = (("authorization", f"Bearer {self.token}"),)
        self.channel = grpc.insecure_channel(self.scheduler, options=[("grpc.max_send_message_length", 1 << 27)])
        self.stub = pb_grpc.SchedulerStub(self.channel)

    def deploy(self, app_file: Path) -> dict[str, str]:
        """Deploy (a new version each time, with no container yet); {function: Host header}."""
        request = pb.DeployRequest(app=load_definition(parse_ref(str(app_file))))
        events = self.stub.Deploy(request, timeout=600, metadata=self.metadata)
        deployed = next(e.deployed for e in events if e.WhichOneof("kind") == "deployed")
        return {e.function: urlsplit(e.url).netloc for e in deployed.endpoints}

    def status(self) -> pb.StatusResponse:
        return self.stub.Status(pb.StatusRequest(), timeout=10, metadata=self.metadata)

    def pids(self) -> dict[str, int]:
        """{"scheduler"|"worker"|"ingress": pid} of the daemons, read from /proc."""
        found: dict[str, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid and len(argv) > 3:
                found[argv[3].decode()] = int(entry.name)
        return found

    def close(self) -> None:
        self.channel.close()
        stop(self.process, 30)
        self.dir.cleanup()


def stop(process: subprocess.Popen[Any], timeout: float) -> None:
    """Terminate the process and wait `timeout` seconds for it; kill it if it is still running."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def free_port() -> int:
    """A loopback port free now. Only for a server that binds its port itself: between closing
    here and the server binding, another process could take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def p(values: list[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values)
