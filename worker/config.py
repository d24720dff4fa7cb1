"""The worker's configuration: cheap to build, no side effects."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class WorkerConfig:
    scheduler: str = "127.0.0.1:7700"
    cluster_secret: str = ""  # proves to the scheduler that this is one of the cluster's daemons
    work_dir: Path = Path.home() / ".stoker" / "worker"
    worker_id: str = field(default_factory=socket.gethostname)
    bind_host: str = "127.0.0.1"  # where containers listen
    advertise_host: str = "127.0.0.1"  # how ingresses reach them
    gpus: str = ""  # "A10G:24,H100:80" declares GPUs instead of reading NVML
    heartbeat_interval: float = 2.0
    container_ready_timeout: float = 120.0
    fork_containers: bool = True  # fork containers from a pre-imported template (fast cold starts)
    image_dir: Path | None = None  # where images are built; None: <work_dir>/images
    uv_cache_dir: str = ""  # where uv caches downloads for image builds; empty: uv's default
    image_build_timeout: float = 600.0  # seconds one image build may take before it fails
    # Where else to look for interpreters an image's python_version may copy (each holds
    # installations: <dir>/<version>/bin/python3, as pyenv's versions directory does).
    python_dirs: tuple[Path, ...] = ()
