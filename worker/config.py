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
    # What containers' cpu= and memory= requests are placed against; 0: the cores this process may
    # run on, and the machine's memory.
    cpus: int = 0
    memory_mib: int = 0
    heartbeat_interval: float = 2.0
    container_ready_timeout: float = 120.0
    fork_containers: bool = True  # fork containers from a pre-imported template (fast cold starts)
    image_dir: Path | None = None  # where images are built; None: <work_dir>/images
    uv_cache_dir: str = ""  # where uv caches downloads for image builds; empty: uv's default
    image_build_timeout: float = 600.0  # seconds one image build may take before it fails
    # Processes and threads one container may have at once (its cgroup's pids.max); 0: no limit.
    container_pids_limit: int = 4096
    # Each container's network namespace on a bridge of this worker's (worker/network/); None: on
    # when containers are sandboxed (the sandbox makes the namespace), off with --insecure-no-sandbox.
    container_network: bool | None = None
    container_subnet: str = ""  # the bridge's; empty: a free /20 claimed at start (network/subnets.py)
    container_bridge: str = ""  # the bridge's name; empty: derived from the worker id and work dir
    # Sandboxes (worker/sandbox/): every container runs in one, rooted in its image's layers; one
    # with no image (the worker's own environment) in the default image's Debian base, which the
    # worker builds at start, or in `--sandbox-rootfs` when given.
    sandbox_rootfs: Path | None = None
    # Host directories every sandbox gets, read-write: "HOST" or "HOST:INSIDE" (`--sandbox-bind`).
    sandbox_binds: tuple[str, ...] = ()
    insecure_no_sandbox: bool = False  # containers run on the host, as the worker's user
    sandbox_uid_base: int = 100_000  # uid 0 in a sandbox is this host uid (65536 of them mapped)
    sandbox_device_dir: Path = Path("/dev")  # where the device nodes a sandbox may get are
    # host | none (loopback only) | private (its own namespace and address, on the container
    # network's bridge); empty: private when the container network is on, else host.
    sandbox_network: str = ""
    sandbox_seccomp: bool = True
    # "host:port" of ingresses on this machine that containers may reach (an app fetching its own
    # `*.localhost` URLs); `stoker up` names its own. One on another machine needs no mention.
    ingress_addresses: tuple[str, ...] = ()
    # The resolv.conf containers' name servers come from; None: the host's (network/dns.py).
    container_resolv_conf: Path | None = None

    @property
    def has_container_network(self) -> bool:
        if self.container_network is None:
            return self.sandboxed and self.sandbox_network in ("", "private")
        return self.container_network

    @property
    def sandbox_network_mode(self) -> str:
        """The network a sandboxed container is on: its own when the worker has a container
        network, unless --sandbox-network said otherwise."""
        if self.sandbox_network:
            return self.sandbox_network
        return "private" if self.has_container_network else "host"

    @property
    def sandboxed(self) -> bool:
        return not self.insecure_no_sandbox

    # Where else to look for interpreters an image's python_version may copy (each holds
    # installations: <dir>/<version>/bin/python3, as pyenv's versions directory does).
    python_dirs: tuple[Path, ...] = ()
    # Where from_registry images come from (worker/registry/): a mirror asked instead of Docker
    # Hub, credentials (a Docker config.json, and host=user:password pairs), plain-http registries.
    registry_mirror: str = ""
    registry_auth_file: Path | None = None
    registry_credentials: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = ()
