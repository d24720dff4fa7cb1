"""A whole cluster on one machine: scheduler, one worker and ingress as separate processes."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import grpc

from client.connection import Metadata, token_metadata
from ingress.config import IngressConfig
from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from protos.channels import scheduler_channel
from scheduler.config import SchedulerConfig

# A worker's first start on a machine builds the Debian root of containers with no image (about
# 20 s on a good link): the cluster's start may take that long, once.
READY_TIMEOUT = 300.0
RESTART_LIMIT = 5  # restarts of one daemon within RESTART_WINDOW before `up` gives up
RESTART_WINDOW = 60.0


class ClusterError(Exception):
    """The local cluster could not start."""


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: it goes when `stoker up` goes, even on SIGKILL.
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class LocalCluster:
    state_dir: Path
    http_port: int = IngressConfig.port
    grpc_port: int = SchedulerConfig.port
    host: str = SchedulerConfig.host
    workers: int = 1
    log: IO[str] | None = None  # where the daemons' logs go; None: this process's stderr

    def __post_init__(self) -> None:
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, list[str]] = {}
        self.restarts: dict[str, list[float]] = {}
        self.scheduler_address = ""
        self.http_url = ""
        self.workspace_token = ""
        self.env = dict(os.environ)  # the daemons' environment; gets the cluster secret

    def _spawn(self, name: str, *args: str) -> None:
        command = name.split("-")[0]  # "worker-1" runs `stoker worker`
        self.commands[name] = list(args)
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "client", command, *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.log or sys.stderr,
            stderr=self.log or sys.stderr,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # a Ctrl-C reaches `up` alone, which stops them in order
        )

    def _check_ports_free(self) -> None:
        """Say which port is taken, and how to pick another, before any daemon starts (each would
        fail on its own, in a log the user has to go and read)."""
        for port, what, choose in (
            (self.http_port, "HTTP", "STOKER_HTTP_PORT=... (or `stoker up --http-port`)"),
            (self.grpc_port, "scheduler", "STOKER_SCHEDULER_PORT=... (or `stoker up --grpc-port`)"),
        ):
            if port and not _port_free(self.host, port):
                raise ClusterError(
                    f"the {what} port {port} on {self.host} is in use (another `stoker up` or `stoker serve`?); "
                    f"choose another with {choose}"
                )

    def _wait_port(self, name: str, port_file: Path, key: str, deadline: float) -> int:
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise ClusterError(f"the {name} exited with code {self.processes[name].returncode} while starting")
            try:
                return int(json.loads(port_file.read_text())[key])
            except (OSError, ValueError, KeyError):
                time.sleep(0.02)
        raise ClusterError(f"the {name} did not start within {READY_TIMEOUT:g} s")

    def start(self) -> None:
        """Start all three daemons and wait until each is healthy."""
        self._check_ports_free()
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the scheduler's: private
        run_dir = self.state_dir / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + READY_TIMEOUT
        try:
            ports = {name: run_dir / f"{name}.port" for name in ("scheduler", "ingress")}
            for f in ports.values():
                f.unlink(missing_ok=True)
            self._spawn(
                "scheduler",
                "--host",
                self.host,
                "--port",
                str(self.grpc_port),
                "--state-dir",
                str(self.state_dir),
                "--port-file",
                str(ports["scheduler"]),
            )
            grpc_port = self._wait_port("scheduler", ports["scheduler"], "grpc", deadline)
            self.scheduler_address = f"{self.host}:{grpc_port}"
            self._pin_port("scheduler", grpc_port)
            # Secrets travel in the environment, never on command lines that `ps` shows.
            self.env["STOKER_CLUSTER_SECRET"] = self._secret("cluster-secret", "STOKER_CLUSTER_SECRET")
            self.workspace_token = self._secret("workspace-token", "")
            # The ingress first: its port is what the workers' containers may reach.
            self._spawn(
                "ingress",
                "--host",
                self.host,
                "--port",
                str(self.http_port),
                "--scheduler",
                self.scheduler_address,
                "--port-file",
                str(ports["ingress"]),
            )
            http_port = self._wait_port("ingress", ports["ingress"], "http", deadline)
            self.http_url = f"http://localhost:{http_port}"
            self._pin_port("ingress", http_port)
            for i in range(self.workers):
                name, work_dir = ("worker", "worker") if i == 0 else (f"worker-{i}", f"worker-{i}")
                self._spawn(
                    name,
                    "--scheduler",
                    self.scheduler_address,
                    "--work-dir",
                    str(self.state_dir / work_dir),
                    *(["--worker-id", f"{socket.gethostname()}-{i}"] if self.workers > 1 else []),
                    # Its containers may fetch the app's own URLs (their loopback is their own).
                    "--ingress-address",
                    f"{loopback_of(self.host)}:{http_port}",
                )
            self._wait_healthy(deadline)
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, deadline: float) -> None:
        # A channel of its own, closed once healthy: a channel left open to the scheduler keeps
        # its stop waiting out its whole grace period.
        with scheduler_channel(self.scheduler_address) as channel:
            self._poll_healthy(pb_grpc.SchedulerStub(channel), token_metadata(self.workspace_token), deadline)

    def _poll_healthy(self, stub: pb_grpc.SchedulerStub, metadata: Metadata, deadline: float) -> None:
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise ClusterError(f"the {name} exited with code {process.returncode} while starting")
            try:
                status = stub.Status(pb.StatusRequest(), timeout=2, metadata=metadata)
                if len(status.workers) >= self.workers and status.ingresses:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
        raise ClusterError(f"the cluster was not healthy within {READY_TIMEOUT:g} s")

    def _secret(self, name: str, env_var: str) -> str:
        """A secret the scheduler keeps in its state dir (or was given in the environment)."""
        if env_var and os.environ.get(env_var):
            return os.environ[env_var]
        return (self.state_dir / name).read_text().strip()

    def _pin_port(self, name: str, port: int) -> None:
        """A restarted daemon must come back on the port the others already use."""
        args = self.commands[name]
        args[args.index("--port") + 1] = str(port)

    def revive(self) -> str | None:
        """Restart every daemon that has exited. Returns the name of one that keeps dying
        (more than RESTART_LIMIT times in RESTART_WINDOW seconds), which the caller should treat
        as fatal; None when all are running."""
        now = time.monotonic()
        for name, process in list(self.processes.items()):
            code = process.poll()
            if code is None:
                continue
            recent = [t for t in self.restarts.get(name, []) if now - t < RESTART_WINDOW] + [now]
            self.restarts[name] = recent
            if len(recent) > RESTART_LIMIT:
                return name
            print(f"the {name} exited with code {code}; restarting it", file=sys.stderr, flush=True)
            self._spawn(name, *self.commands[name])
        return None

    def stop(self, grace: float = 15.0) -> None:
        """Stop the ingress first (no new requests), then the workers and their containers, the
        scheduler last; then reap."""
        order = sorted(self.processes, key=lambda name: {"ingress": 0, "scheduler": 2}.get(name, 1))
        for name in order:
            process = self.processes[name]
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(grace)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()


def loopback_of(host: str) -> str:
    """Where on this machine a daemon listening on `host` is reached: a wildcard's loopback."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemons bind
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def wait_for_signal(cluster: LocalCluster) -> int:
    """Block until SIGINT/SIGTERM, restarting daemons that die; the exit code for the CLI."""
    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        if received:
            os._exit(1)
        received.append(signum)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not received:
        failing = cluster.revive()
        if failing is not None:
            print(f"error: the {failing} keeps exiting; stopping the cluster", file=sys.stderr)
            return 1
        time.sleep(0.2)
    return 0
