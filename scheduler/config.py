"""The scheduler's configuration: cheap to build, no side effects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SchedulerConfig:
    host: str = "127.0.0.1"
    port: int = 7700  # 0: pick a free one
    state_dir: Path = Path.home() / ".stoker" / "state"
    workspace: str = "ws"
    domain: str = "localhost"
    web_scheme: str = "http"
    web_port: int = 0  # the port in endpoint URLs; 0: the port the ingress reports
    queue_timeout: float = 60.0  # seconds a request may wait for a free container slot
    heartbeat_timeout: float = 15.0  # seconds of worker silence before it is dropped
    port_file: Path | None = None  # where to write the bound port, for supervisors
    tls_cert: Path | None = None  # PEM certificate and key: serve gRPC over TLS
    tls_key: Path | None = None
    cluster_secret: str = ""  # workers and ingresses present it; "": kept in state_dir/cluster-secret

    @property
    def database(self) -> Path:
        return self.state_dir / "stoker.db"
