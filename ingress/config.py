"""The ingress's configuration: cheap to build, no side effects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class IngressConfig:
    host: str = "127.0.0.1"
    port: int = 8000  # 0: pick a free one
    scheduler: str = "127.0.0.1:7700"
    ingress_id: str = field(default_factory=lambda: f"in-{uuid.uuid4().hex[:8]}")
    port_file: Path | None = None  # where to write the bound port, for supervisors
    placement_timeout: float = 120.0  # seconds to wait for the scheduler to place a request
