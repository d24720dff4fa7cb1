"""The ingress's configuration: cheap to build, no side effects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ingress.held_slots import LINGER


@dataclass(frozen=True)
class IngressConfig:
    host: str = "127.0.0.1"
    port: int = 8000  # 0: pick a free one
    scheduler: str = "127.0.0.1:7700"
    cluster_secret: str = ""  # proves to the scheduler that this is one of the cluster's daemons
    ingress_id: str = field(default_factory=lambda: f"in-{uuid.uuid4().hex[:8]}")
    port_file: Path | None = None  # where to write the bound port, for supervisors
    placement_timeout: float = 120.0  # seconds to wait for the scheduler to place a request
    slot_linger: float = LINGER  # seconds a held container slot waits for the next request; 0: hold none
    rate_limit_rps: float = 200.0  # per workspace, cluster-wide, with a 5-second burst; 0: no limit
    max_body_bytes: int = 4 * 1024**3  # a request body past it: 413, or a cut connection once answering
    max_header_bytes: int = 64 * 1024  # the request line and headers; past it: 431
    header_timeout: float = 10.0  # seconds for a whole request head to arrive; past it: 408 and close
    tls_cert: str | None = None  # PEM certificate and key: serve HTTPS
    tls_key: str | None = None
