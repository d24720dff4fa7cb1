"""The operators' commands: `stoker scheduler`, `worker` and `ingress` run one daemon each;
`stoker up` runs a whole cluster on this machine. Every default is its Config dataclass's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from client.cli.errors import reports_errors
from client.cli.up import ClusterError
from ingress.config import IngressConfig
from scheduler.config import SchedulerConfig
from worker.config import WorkerConfig

LogLevel = Annotated[str, typer.Option(envvar="STOKER_LOG_LEVEL", help="debug, info, warning or error.")]
PortFile = Annotated[Path | None, typer.Option(envvar="STOKER_PORT_FILE", help="Write the bound port here as JSON.")]
ClusterSecret = Annotated[
    str, typer.Option(envvar="STOKER_CLUSTER_SECRET", help="Shared by the cluster's daemons. Prefer the env var.")
]


def scheduler(
    host: Annotated[str, typer.Option(envvar="STOKER_SCHEDULER_HOST")] = SchedulerConfig.host,
    port: Annotated[int, typer.Option(envvar="STOKER_SCHEDULER_PORT", help="0 picks a free port.")] = (
        SchedulerConfig.port
    ),
    state_dir: Annotated[Path, typer.Option(envvar="STOKER_STATE_DIR")] = SchedulerConfig.state_dir,
    workspace: Annotated[str, typer.Option(envvar="STOKER_WORKSPACE")] = SchedulerConfig.workspace,
    domain: Annotated[str, typer.Option(envvar="STOKER_DOMAIN", help="Endpoints live under it.")] = (
        SchedulerConfig.domain
    ),
    web_scheme: Annotated[str, typer.Option(envvar="STOKER_WEB_SCHEME")] = SchedulerConfig.web_scheme,
    web_port: Annotated[int, typer.Option(envvar="STOKER_WEB_PORT", help="Port in URLs; 0: the ingress's.")] = (
        SchedulerConfig.web_port
    ),
    queue_timeout: Annotated[float, typer.Option(envvar="STOKER_QUEUE_TIMEOUT")] = SchedulerConfig.queue_timeout,
    heartbeat_timeout: Annotated[
        float, typer.Option(envvar="STOKER_HEARTBEAT_TIMEOUT", help="Drop a worker silent this long.")
    ] = SchedulerConfig.heartbeat_timeout,
    port_file: PortFile = SchedulerConfig.port_file,
    tls_cert: Annotated[Path | None, typer.Option(envvar="STOKER_TLS_CERT", help="Serve gRPC over TLS.")] = (
        SchedulerConfig.tls_cert
    ),
    tls_key: Annotated[Path | None, typer.Option(envvar="STOKER_TLS_KEY")] = SchedulerConfig.tls_key,
    cluster_secret: Annotated[
        str, typer.Option(envvar="STOKER_CLUSTER_SECRET", help="Default: kept in the state dir.")
    ] = SchedulerConfig.cluster_secret,
    log_level: LogLevel = "info",
) -> None:
    """Run the scheduler: the control plane."""
    from client.cli.daemon import configure_logging, run
    from scheduler.server import SchedulerServer

    configure_logging(log_level)
    run(
        SchedulerServer(
            SchedulerConfig(
                host=host,
                port=port,
                state_dir=state_dir,
                workspace=workspace,
                domain=domain,
                web_scheme=web_scheme,
                web_port=web_port,
                queue_timeout=queue_timeout,
                heartbeat_timeout=heartbeat_timeout,
                port_file=port_file,
                tls_cert=tls_cert,
                tls_key=tls_key,
                cluster_secret=cluster_secret,
            )
        )
    )


def worker(
    scheduler: Annotated[str, typer.Option(envvar="STOKER_SCHEDULER")] = WorkerConfig.scheduler,
    work_dir: Annotated[Path, typer.Option(envvar="STOKER_WORK_DIR")] = WorkerConfig.work_dir,
    worker_id: Annotated[str, typer.Option(envvar="STOKER_WORKER_ID", help="Default: the host name.")] = "",
    bind_host: Annotated[str, typer.Option(envvar="STOKER_BIND_HOST", help="Containers listen here.")] = (
        WorkerConfig.bind_host
    ),
    advertise_host: Annotated[str, typer.Option(envvar="STOKER_ADVERTISE_HOST")] = WorkerConfig.advertise_host,
    gpus: Annotated[str, typer.Option(envvar="STOKER_WORKER_GPUS", help="Declare GPUs: 'A10G:24,H100:80'.")] = (
        WorkerConfig.gpus
    ),
    cpus: Annotated[
        int,
        typer.Option(
            min=0, envvar="STOKER_WORKER_CPUS", help="Cores containers' cpu= requests fit in. 0: those it may run on."
        ),
    ] = WorkerConfig.cpus,
    memory: Annotated[
        int,
        typer.Option(
            min=0, envvar="STOKER_WORKER_MEMORY", help="MiB containers' memory= requests fit in. 0: the machine's."
        ),
    ] = WorkerConfig.memory_mib,
    fork: Annotated[bool, typer.Option(envvar="STOKER_WORKER_FORK", help="Fork containers from a template.")] = (
        WorkerConfig.fork_containers
    ),
    image_dir: Annotated[
        Path | None, typer.Option(envvar="STOKER_IMAGE_DIR", help="Where images are built. Default: in the work dir.")
    ] = WorkerConfig.image_dir,
    uv_cache_dir: Annotated[str, typer.Option(envvar="STOKER_UV_CACHE_DIR", help="uv's cache for image builds.")] = (
        WorkerConfig.uv_cache_dir
    ),
    image_build_timeout: Annotated[
        float, typer.Option(min=1, envvar="STOKER_IMAGE_BUILD_TIMEOUT", help="Seconds one image build may take.")
    ] = WorkerConfig.image_build_timeout,
    container_pids_limit: Annotated[
        int,
        typer.Option(
            min=0, envvar="STOKER_CONTAINER_PIDS_LIMIT", help="Processes and threads per container. 0: no limit."
        ),
    ] = WorkerConfig.container_pids_limit,
    container_network: Annotated[
        bool | None,
        typer.Option(
            "--container-network/--no-container-network",
            envvar="STOKER_CONTAINER_NETWORK",
            help="Give each container's network namespace an address on a bridge of this worker's. "
            "Default: on when containers are sandboxed.",
            show_default=False,
        ),
    ] = WorkerConfig.container_network,
    container_subnet: Annotated[
        str,
        typer.Option(
            envvar="STOKER_CONTAINER_SUBNET",
            help="The containers' subnet (one per worker). Default: a free /20 of 10.88.0.0/13.",
        ),
    ] = WorkerConfig.container_subnet,
    ingress_address: Annotated[
        list[str] | None,
        typer.Option(
            envvar="STOKER_INGRESS_ADDRESS",
            help="host:port of an ingress on this machine that containers may reach (apps fetching "
            "their own URLs); repeatable. `stoker up` names its own.",
        ),
    ] = None,
    container_bridge: Annotated[
        str, typer.Option(envvar="STOKER_CONTAINER_BRIDGE", help="The bridge's name. Default: from the worker.")
    ] = WorkerConfig.container_bridge,
    container_resolv_conf: Annotated[
        Path | None,
        typer.Option(
            envvar="STOKER_CONTAINER_RESOLV_CONF",
            help="The resolv.conf containers' name servers come from. Default: the host's.",
        ),
    ] = WorkerConfig.container_resolv_conf,
    sandbox_rootfs: Annotated[
        Path | None,
        typer.Option(
            envvar="STOKER_SANDBOX_ROOTFS", help="Root of containers with no image. Default: Debian, built at start."
        ),
    ] = WorkerConfig.sandbox_rootfs,
    sandbox_bind: Annotated[
        list[str] | None,
        typer.Option(
            envvar="STOKER_SANDBOX_BIND",
            help="A host directory every container gets read-write, HOST or HOST:INSIDE; repeatable. "
            "Files there belong to the sandboxes' host uids (--sandbox-uid-base).",
        ),
    ] = None,
    insecure_no_sandbox: Annotated[
        bool,
        typer.Option(envvar="STOKER_INSECURE_NO_SANDBOX", help="Run containers on the host, with no sandbox."),
    ] = WorkerConfig.insecure_no_sandbox,
    sandbox_uid_base: Annotated[
        int, typer.Option(min=1, envvar="STOKER_SANDBOX_UID_BASE", help="Host uid of uid 0 in a sandbox.")
    ] = WorkerConfig.sandbox_uid_base,
    sandbox_device_dir: Annotated[
        Path, typer.Option(envvar="STOKER_SANDBOX_DEVICE_DIR", help="Device nodes sandboxes get theirs from.")
    ] = WorkerConfig.sandbox_device_dir,
    sandbox_network: Annotated[
        str,
        typer.Option(
            envvar="STOKER_SANDBOX_NETWORK",
            help="private (each container its own address, on the container network), host, or none "
            "(loopback only). Default: private with the container network, else host.",
        ),
    ] = WorkerConfig.sandbox_network,
    sandbox_seccomp: Annotated[
        bool, typer.Option(envvar="STOKER_SANDBOX_SECCOMP", help="Filter system calls in sandboxes.")
    ] = WorkerConfig.sandbox_seccomp,
    python_dir: Annotated[
        list[Path] | None,
        typer.Option(
            help="A directory of Python installations (<dir>/<version>/bin/python3) images may copy; "
            "repeat for more. ~/.pyenv/versions is always searched."
        ),
    ] = None,
    registry_mirror: Annotated[
        str,
        typer.Option(
            envvar="STOKER_REGISTRY_MIRROR",
            help="A registry (e.g. http://127.0.0.1:5000) asked instead of Docker Hub for from_registry images.",
        ),
    ] = WorkerConfig.registry_mirror,
    registry_auth_file: Annotated[
        Path | None,
        typer.Option(envvar="STOKER_REGISTRY_AUTH_FILE", help="Registry credentials, in Docker's config.json format."),
    ] = WorkerConfig.registry_auth_file,
    registry_credential: Annotated[
        list[str] | None,
        typer.Option(help="host=user:password for a registry; repeat for more. Wins over --registry-auth-file."),
    ] = None,
    insecure_registry: Annotated[
        list[str] | None,
        typer.Option(help="host[:port] of a registry spoken to over plain http (loopback always is); repeatable."),
    ] = None,
    cluster_secret: ClusterSecret = WorkerConfig.cluster_secret,
    log_level: LogLevel = "info",
) -> None:
    """Run a worker: containers and GPUs of this machine."""
    from client.cli.daemon import configure_logging, run
    from worker.sandbox.layout import shared_binds
    from worker.sandbox.preflight import SandboxUnavailable, check
    from worker.server import WorkerServer, registry_config, sandbox_network_mode

    configure_logging(log_level)
    config = WorkerConfig(
        scheduler=scheduler,
        work_dir=work_dir,
        bind_host=bind_host,
        advertise_host=advertise_host,
        gpus=gpus,
        cpus=cpus,
        memory_mib=memory,
        fork_containers=fork,
        image_dir=image_dir,
        uv_cache_dir=uv_cache_dir,
        image_build_timeout=image_build_timeout,
        container_pids_limit=container_pids_limit,
        container_network=container_network,
        container_subnet=container_subnet,
        ingress_addresses=tuple(ingress_address or ()),
        container_resolv_conf=container_resolv_conf,
        container_bridge=container_bridge,
        sandbox_rootfs=sandbox_rootfs,
        sandbox_binds=tuple(sandbox_bind or ()),
        insecure_no_sandbox=insecure_no_sandbox,
        sandbox_uid_base=sandbox_uid_base,
        sandbox_device_dir=sandbox_device_dir,
        sandbox_network=sandbox_network,
        sandbox_seccomp=sandbox_seccomp,
        python_dirs=tuple(python_dir or ()),
        registry_mirror=registry_mirror,
        registry_auth_file=registry_auth_file,
        registry_credentials=tuple(registry_credential or ()),
        insecure_registries=tuple(insecure_registry or ()),
        cluster_secret=cluster_secret,
    )
    if worker_id:  # else the config's default: the host name
        config = replace(config, worker_id=worker_id)
    try:
        registry_config(config)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--registry-*") from None
    try:
        sandbox_network_mode(config)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--sandbox-network") from None
    try:
        shared_binds(config.sandbox_binds)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--sandbox-bind") from None
    if config.sandboxed:
        try:
            check(config.work_dir / "sandbox-preflight", config.sandbox_rootfs)
        except SandboxUnavailable as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    run(WorkerServer(config))


def ingress(
    host: Annotated[str, typer.Option(envvar="STOKER_INGRESS_HOST")] = IngressConfig.host,
    port: Annotated[int, typer.Option(envvar="STOKER_HTTP_PORT", help="0 picks a free port.")] = IngressConfig.port,
    scheduler: Annotated[str, typer.Option(envvar="STOKER_SCHEDULER")] = IngressConfig.scheduler,
    port_file: PortFile = IngressConfig.port_file,
    cluster_secret: ClusterSecret = IngressConfig.cluster_secret,
    rate_limit_rps: Annotated[
        float,
        typer.Option(
            min=0.0,
            envvar="STOKER_RATE_LIMIT_RPS",
            help="Requests/s per workspace, cluster-wide; bursts of 5 s worth. 0: off.",
        ),
    ] = IngressConfig.rate_limit_rps,
    max_body_bytes: Annotated[
        int,
        typer.Option(min=1, envvar="STOKER_MAX_BODY_BYTES", help="Largest request body; past it, 413."),
    ] = IngressConfig.max_body_bytes,
    max_header_bytes: Annotated[
        int,
        typer.Option(min=1, envvar="STOKER_MAX_HEADER_BYTES", help="Largest request line and headers; past it, 431."),
    ] = IngressConfig.max_header_bytes,
    header_timeout: Annotated[
        float,
        typer.Option(min=0.001, envvar="STOKER_HEADER_TIMEOUT", help="Seconds for a whole request head to arrive."),
    ] = IngressConfig.header_timeout,
    tls_cert: Annotated[str | None, typer.Option(envvar="STOKER_INGRESS_TLS_CERT", help="Serve HTTPS.")] = (
        IngressConfig.tls_cert
    ),
    tls_key: Annotated[str | None, typer.Option(envvar="STOKER_INGRESS_TLS_KEY")] = IngressConfig.tls_key,
    slot_linger: Annotated[
        float,
        typer.Option(
            min=0.0,
            envvar="STOKER_INGRESS_SLOT_LINGER",
            help="Seconds a container slot is held for the next request to the same endpoint, "
            "skipping the scheduler. 0: ask the scheduler for every request.",
        ),
    ] = IngressConfig.slot_linger,
    log_level: LogLevel = "info",
) -> None:
    """Run an ingress: the HTTP and WebSocket front door."""
    from client.cli.daemon import configure_logging, run
    from ingress.server import IngressServer

    configure_logging(log_level)
    run(
        IngressServer(
            IngressConfig(
                host=host,
                port=port,
                scheduler=scheduler,
                port_file=port_file,
                cluster_secret=cluster_secret,
                rate_limit_rps=rate_limit_rps,
                max_body_bytes=max_body_bytes,
                max_header_bytes=max_header_bytes,
                header_timeout=header_timeout,
                tls_cert=tls_cert,
                tls_key=tls_key,
                slot_linger=slot_linger,
            )
        )
    )


@reports_errors(ClusterError)
def up(
    http_port: Annotated[int, typer.Option(envvar="STOKER_HTTP_PORT")] = IngressConfig.port,
    grpc_port: Annotated[int, typer.Option(envvar="STOKER_SCHEDULER_PORT")] = SchedulerConfig.port,
    state_dir: Annotated[Path, typer.Option(envvar="STOKER_STATE_DIR")] = SchedulerConfig.state_dir,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes, each its own node.")] = 1,
    write_config: Annotated[bool, typer.Option(help="Point this user's CLI at the new cluster.")] = True,
) -> None:
    """Run scheduler, worker(s) and ingress on this machine until interrupted."""
    from client import config as client_config
    from client.cli.up import LocalCluster, wait_for_signal

    cluster = LocalCluster(state_dir=state_dir, http_port=http_port, grpc_port=grpc_port, workers=workers)
    cluster.start()
    try:
        if write_config:
            path = client_config.save(cluster.scheduler_address, cluster.workspace_token)
            print(f"Wrote {path}", flush=True)
        print(f"scheduler: {cluster.scheduler_address}", flush=True)
        print(f"ready: {cluster.http_url}", flush=True)
        code = wait_for_signal(cluster)
    finally:
        cluster.stop()
    raise typer.Exit(code)
