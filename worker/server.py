"""The worker daemon: registers with the scheduler, holds the heartbeat stream, runs containers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, cast

import grpc

from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from protos.bundle import extract_bundle
from protos.channels import CLUSTER_SECRET_HEADER, scheduler_aio_channel, stay_connected
from worker import cgroups, gpus, image_launch
from worker.config import WorkerConfig
from worker.containers import ContainerFailed, ContainerProcess
from worker.images import BuiltImage, ImageBuilder, ImageBuildError, blob_matches
from worker.inherited_env import inherited_environment
from worker.log_shipper import LogShipper
from worker.network import ContainerNetwork, DnsPlan, NetworkConfig, NetworkError, read_plan
from worker.registry import RegistryConfig
from worker.rootfs.python import DEFAULT_PYTHON_DIRS
from worker.sandbox.layout import SandboxLayout, bundle_dir, prepare_container_dir, shared_binds
from worker.sandbox.spec import NETWORKS, Network, SandboxSpec
from worker.snapshots import Snapshots
from worker.template_client import OWN_ENVIRONMENT, ForkTemplate, TemplateError, TemplatePool

log = logging.getLogger(__name__)

MAX_MESSAGE = 128 * 1024 * 1024

# Seconds a stopping worker gives its containers: their inputs in flight drain (up to 5 s), then
# their @modal.exit hooks run (up to 4 s): worker/runtime/container.py. As the scheduler's stop.
SHUTDOWN_GRACE_SECONDS = 10.0
# Seconds, after its containers have stopped, for their last output to reach the scheduler.
LAST_WORDS_SECONDS = 3.0
# Why a block_network=True container does not start here: only a container in a network
# namespace of its own on the worker's bridge (--sandbox-network private) can be kept off the
# network, and the worker will not pretend to keep one off it.
BLOCK_NETWORK_UNSUPPORTED = (
    "block_network=True is not supported yet on this worker: its containers share the host's network "
    "(a sandboxed worker with its container network on gives each container its own)"
)


def registry_config(config: WorkerConfig) -> RegistryConfig:
    """How this worker pulls from_registry images; ValueError says which flag is malformed."""
    return RegistryConfig.from_flags(
        mirror=config.registry_mirror,
        auth_file=config.registry_auth_file,
        credentials=config.registry_credentials,
        insecure_registries=config.insecure_registries,
        cache_dir=(config.image_dir or config.work_dir / "images") / "registry-blobs",
    )


def sandbox_network_mode(config: WorkerConfig) -> Network:
    """The network mode of this worker's sandboxes; ValueError says what is wrong with the flags."""
    network = config.sandbox_network_mode
    if network not in NETWORKS:
        raise ValueError(f"--sandbox-network {network!r}: use {', '.join(NETWORKS)}")
    if network == "private" and not config.has_container_network:
        raise ValueError("--sandbox-network private needs a container network (not --no-container-network)")
    return cast(Network, network)


def sandbox_layout(config: WorkerConfig) -> SandboxLayout | None:
    if not config.sandboxed:
        return None
    network = sandbox_network_mode(config)
    return SandboxLayout(
        rootfs=config.sandbox_rootfs,
        directory=config.work_dir / "sandbox",
        uid_base=config.sandbox_uid_base,
        device_dir=config.sandbox_device_dir,
        network=network,
        seccomp=config.sandbox_seccomp,
        shared=shared_binds(config.sandbox_binds),
    )


class WorkerServer:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.stopped = asyncio.Event()
        self.containers: dict[str, ContainerProcess] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # None ends the stream from this side: the scheduler reads all that came before it.
        self._outbox: asyncio.Queue[pb.WorkerMessage | None] = asyncio.Queue()
        self.stopping = False  # shutting down: containers stop, no new ones start
        self._stream_ended = asyncio.Event()
        self._container_tasks: set[asyncio.Task[None]] = set()
        self._channel: grpc.aio.Channel | None = None
        self._connection: asyncio.Task[None] | None = None
        self._gpus: list[pb.Gpu] = []
        self._metadata = ((CLUSTER_SECRET_HEADER, config.cluster_secret),)
        # Container output goes to the scheduler over the current stream (whichever that is).
        self._logs = LogShipper(lambda batch: self._outbox.put_nowait(pb.WorkerMessage(logs=batch)))
        self.images = ImageBuilder(
            config.image_dir or config.work_dir / "images",
            config.worker_id,
            config.uv_cache_dir,
            config.image_build_timeout,
            fetch_blob=self._image_blob,
            python_dirs=[*config.python_dirs, *DEFAULT_PYTHON_DIRS],
            registry_config=registry_config(config),
        )
        self.templates = TemplatePool(config.work_dir, enabled=config.fork_containers)
        self.sandboxes = sandbox_layout(config)  # None: containers run on the host
        self.snapshots = Snapshots(
            self.templates, config.work_dir / "snapshots", config, self._logs.add, sandboxes=self.sandboxes
        )
        self.cgroups: cgroups.WorkerCgroups | None = None  # None: containers run without limits
        self.network: ContainerNetwork | None = None  # with --container-network: each container's address
        self._dns = DnsPlan((), None)  # how its containers resolve names (read at start)

    @property
    def _own_networks(self) -> bool:
        """Whether each container of this worker is in a network namespace of its own, on the
        worker's bridge (with sandboxes on, every container is in one: a sandbox on "private")."""
        layout = self.sandboxes
        return layout is not None and layout.network == "private" and self.network is not None

    async def _open_cgroups(self) -> cgroups.WorkerCgroups | None:
        """The worker's cgroups, with what a previous run left removed; None (and a warning) when
        this machine will not give it any."""
        try:
            cgroups.check()
            worker_cgroups = cgroups.WorkerCgroups(
                cgroups.detect(),
                cgroups.parent_name(self.config.worker_id, self.config.work_dir),
                self.config.container_pids_limit,
            )
            removed = await asyncio.to_thread(worker_cgroups.prepare)
        except (cgroups.CgroupsUnusable, cgroups.CgroupError) as exc:
            log.warning("containers run without cpu, memory or pids limits: %s", exc)
            return None
        if removed:
            log.info("removed %d containers' cgroups that a previous run of this worker left", removed)
        return worker_cgroups

    def _cgroup(self, command: pb.StartContainer) -> cgroups.ContainerCgroup | None:
        if self.cgroups is None:
            return None
        spec = command.function
        limits = cgroups.Limits(
            cpu_request=spec.cpu,
            cpu_limit=spec.cpu_limit,
            memory_request_mib=spec.memory_mib,
            memory_limit_mib=spec.memory_limit_mib,
        )
        return self.cgroups.container(command.container_id, limits)

    async def startup(self) -> None:
        if self.config.has_container_network:
            await self._start_network()
        self._gpus = gpus.inventory(self.config.gpus)
        self.snapshots.clear()
        self.cgroups = await self._open_cgroups()
        if self.sandboxes is not None:
            if self.sandboxes.rootfs is None:
                self.sandboxes.rootfs = await self._default_root()
            self.sandboxes.clear()
            if absent := self.sandboxes.note_gpus([gpu.index for gpu in self._gpus]):
                log.warning(
                    "GPUs %s have no device node in %s: their containers get CUDA_VISIBLE_DEVICES, no device",
                    ", ".join(map(str, absent)),
                    self.sandboxes.device_dir,
                )
            if self.sandboxes.network == "private" and self.network is not None:
                self.sandboxes.resolv_conf = self._dns.resolv_conf(self.network.gateway)
        elif self.config.insecure_no_sandbox:
            log.warning(
                "--insecure-no-sandbox: containers run on this host as the worker's user, and can read "
                "what it can (other containers' files, the worker's state)"
            )
        image_launch.clear(self.config.work_dir)
        shutil.rmtree(self.config.work_dir / "sockets", ignore_errors=True)
        for sub in ("bundles", "containers", "snapshots"):
            (self.config.work_dir / sub).mkdir(parents=True, exist_ok=True)
        await self._template(None)  # warm now, so the first container forks at once
        self._channel = scheduler_aio_channel(
            self.config.scheduler,
            options=[("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.keepalive_time_ms", 10_000)],
        )
        self._stub = pb_grpc.SchedulerStub(self._channel)
        self._connection = asyncio.create_task(stay_connected(self._connect), name="worker-connection")
        self._spawn(self._logs.run(), "log-shipper")
        log.info(
            "worker %s starting (scheduler %s, %d GPUs)", self.config.worker_id, self.config.scheduler, len(self._gpus)
        )

    async def _default_root(self) -> Path:
        """The root of containers with no image: the default image's Debian base, built on the
        first start of a worker with this image dir (about 20 s), then found at once."""
        log.info("the root filesystem of containers with no image: Debian, built once per image dir")
        try:
            return await self.images.default_root(lambda line: log.info("%s", line))
        except ImageBuildError as exc:
            raise SystemExit(
                f"stoker worker: cannot build the root filesystem of containers with no image: {exc} "
                "(give one with --sandbox-rootfs)"
            ) from None

    async def _start_network(self) -> None:
        self._dns = read_plan(self.config.container_resolv_conf)
        try:
            self.network = ContainerNetwork(network_config(self.config, self._dns))
            await self.network.start()
        except NetworkError as exc:
            raise SystemExit(f"stoker worker: cannot start the container network: {exc}") from None

    async def _connect(self) -> None:
        self._stream_ended.clear()
        register = pb.WorkerRegister(
            worker_id=self.config.worker_id,
            hostname=os.uname().nodename,
            cpu_count=self.config.cpus or len(os.sched_getaffinity(0)),  # the cores it may run on
            memory_bytes=self.config.memory_mib * 2**20 or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            gpus=self._gpus,
            own_networks=self._own_networks,  # two @web_server(8000) containers fit side by side
        )
        # Containers from before a reconnect are unknown to the scheduler now: stop them.
        for container in list(self.containers.values()):
            self._spawn(self._stop_container(container.id, 1.0), f"stop-{container.id}")
        self._outbox = asyncio.Queue()
        self._outbox.put_nowait(pb.WorkerMessage(register=register))
        self._logs.reset()
        call = self._stub.WorkerConnect(self._messages(), metadata=self._metadata)
        log.info("registered with scheduler %s", self.config.scheduler)
        async for command in call:
            kind = command.WhichOneof("kind")
            if kind == "start":
                task = self._spawn(self._run_container(command.start), f"container-{command.start.container_id}")
                self._container_tasks.add(task)
                task.add_done_callback(self._container_tasks.discard)
            elif kind == "stop":
                self._spawn(
                    self._stop_container(command.stop.container_id, command.stop.grace_seconds),
                    f"stop-{command.stop.container_id}",
                )
            elif kind == "build":
                self._spawn(self._build_image(command.build), f"build-{command.build.image_id}")
            elif kind == "live_snapshots":
                self.snapshots.keep(command.live_snapshots.keys)
            elif kind == "image_prune":
                self._spawn(self._prune_images(command.image_prune), "image-prune")
        self._stream_ended.set()

    async def _messages(self) -> AsyncIterator[pb.WorkerMessage]:
        outbox = self._outbox
        heartbeat = asyncio.create_task(self._heartbeat(outbox), name="heartbeat")
        try:
            while (message := await outbox.get()) is not None:
                yield message
                if message.HasField("logs"):
                    self._logs.delivered()  # gRPC asked for the next message: this one was written
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, outbox: asyncio.Queue[pb.WorkerMessage | None]) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval)
            if self._gpus and not self.config.gpus:
                # Utilization and memory change: re-read NVML (off the loop; it can block).
                with contextlib.suppress(Exception):
                    self._gpus = await asyncio.to_thread(gpus.read_nvml)
            beat = pb.WorkerHeartbeat(gpus=self._gpus)
            outbox.put_nowait(pb.WorkerMessage(heartbeat=beat))

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _bundle(self, bundle_hash: str) -> bytes:
        path = self.config.work_dir / "bundles" / f"{bundle_hash}.zip"
        if path.exists():
            return path.read_bytes()
        reply = await self._stub.GetBundle(pb.GetBundleRequest(bundle_hash=bundle_hash), metadata=self._metadata)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(reply.bundle)
        tmp.replace(path)
        return bytes(reply.bundle)

    async def _image_blob(self, digest: str) -> bytes:
        """The local files an image's add_local_* step adds, as the deploy carried them."""
        try:
            reply = await self._stub.GetImageBlob(pb.GetImageBlobRequest(digest=digest), metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise ImageBuildError(f"could not fetch the image's files {digest}: {exc.details()}") from None
        if not blob_matches(digest, reply.data):
            raise ImageBuildError(f"the image's files {digest} arrived damaged")
        return bytes(reply.data)

    async def _prune_images(self, command: pb.ImagePrune) -> None:
        outbox = self._outbox
        answer = pb.ImagePruned(request_id=command.request_id, worker_id=self.config.worker_id)
        in_use = {c.command.image_id for c in self.containers.values() if c.command.image_id}
        try:
            pruned = await self.images.prune([*command.keep_image_ids, *in_use])
            answer.images, answer.layers, answer.bytes = pruned.images, pruned.layers, pruned.bytes
            log.info("pruned %d images and %d layers (%d bytes)", pruned.images, pruned.layers, pruned.bytes)
        except Exception as exc:
            log.exception("image prune failed")
            answer.error = f"the prune failed: {exc!r}"
        outbox.put_nowait(pb.WorkerMessage(image_pruned=answer))

    async def _image(self, image_id: str, spec: pb.ImageSpec) -> BuiltImage:
        """Build the image (or find it built), telling the scheduler each line, then done."""
        outbox = self._outbox

        def send(line: str) -> None:
            outbox.put_nowait(pb.WorkerMessage(image=pb.ImageBuildEvent(image_id=image_id, output=line)))

        try:
            image = await self.images.ensure(image_id, spec, send)
        except Exception as exc:
            if not isinstance(exc, ImageBuildError):
                log.exception("building image %s failed", image_id)
                exc = ImageBuildError(f"the worker failed while building: {exc!r}")
            outbox.put_nowait(pb.WorkerMessage(image=pb.ImageBuildEvent(image_id=image_id, done=True, error=str(exc))))
            raise exc from None
        outbox.put_nowait(pb.WorkerMessage(image=pb.ImageBuildEvent(image_id=image_id, done=True)))
        return image

    async def _build_image(self, command: pb.BuildImage) -> None:
        with contextlib.suppress(ImageBuildError):
            image = await self._image(command.image_id, command.spec)
            # Warm its template now, so the first container of a deploy does not wait for it.
            await self._template(image)

    async def _template(self, image: BuiltImage | None) -> ForkTemplate | None:
        """The template a container of `image` (None: the worker's own environment) forks from."""
        key, python = (OWN_ENVIRONMENT, sys.executable) if image is None else (image.id, image.python)
        layout = self.sandboxes
        if layout is not None:

            def sandboxed(path: Path) -> ForkTemplate:
                # An image's template imports its containers' runtime from the image's runtime paths.
                env = inherited_environment() | (image.environment({}) if image is not None else {})
                return ForkTemplate(path, python, env=env, sandbox=layout.template(key, image))

            return await self.templates.get(key, python, sandboxed)
        if image is None:
            return await self.templates.get(OWN_ENVIRONMENT, sys.executable)

        def in_image(_: Path) -> ForkTemplate:
            prefix, socket_path = image_launch.template_launch(
                image, self.config.work_dir, image.id[-12:], self.config.work_dir / "containers"
            )
            env = {**inherited_environment(), **image.environment({})}
            return ForkTemplate(
                socket_path, image.python, prefix=prefix, env=env, name=f"the fork template of {image.id}"
            )

        return await self.templates.get(image.id, image.python, in_image)

    async def _snapshot(self, command: pb.StartContainer, image: BuiltImage | None) -> ForkTemplate | None:
        """The memory snapshot `command`'s container forks from; ContainerFailed when it failed."""
        try:
            return await self.snapshots.template(command, image, lambda: self._bundle(command.bundle_hash))
        except TemplateError as exc:
            raise ContainerFailed(str(exc)) from None

    async def _run_container(self, command: pb.StartContainer) -> None:
        outbox = self._outbox
        directory = self.config.work_dir / "containers" / command.container_id
        container: ContainerProcess | None = None
        cgroup: cgroups.ContainerCgroup | None = None
        code = -1
        reason = ""
        try:
            if self.stopping:
                reason = "its worker is stopping"
                return
            image: BuiltImage | None = None
            if command.image_id:
                # A container never waits for a deploy's build: on a worker that joined later,
                # or lost the image, it builds here first.
                image = self.images.built(command.image_id) or await self._image(
                    command.image_id, command.function.image
                )
            if command.function.block_network and not self._own_networks:
                raise ContainerFailed(BLOCK_NETWORK_UNSUPPORTED)
            if command.snapshot_key:
                template = await self._snapshot(command, image)
            else:
                template = await self._template(image)
            cgroup = self._cgroup(command)
            sandbox: SandboxSpec | None = None
            if self.sandboxes is not None:
                forks_from = template.sandbox if template is not None and template.alive else None
                sandbox = self.sandboxes.container(command.container_id, image, list(command.gpu_indices), forks_from)
                prepare_container_dir(sandbox)
                directory = bundle_dir(sandbox.state_dir)
            container = ContainerProcess(
                command,
                directory,
                self.config,
                image,
                template,
                on_output=self._logs.add,
                cgroup=cgroup,
                sandbox=sandbox,
                network=self.network,  # used when its sandbox is on network "private"
            )
            self.containers[container.id] = container
            extract_bundle(await self._bundle(command.bundle_hash), directory)
            address = await container.start()
            outbox.put_nowait(pb.WorkerMessage(started=pb.ContainerStarted(container_id=container.id, address=address)))
            code = await container.wait()
            reason = container.exit_reason(code)
            if code not in (0, -15):
                log.warning("container %s exited with code %d:\n%s", container.id, code, container.tail())
        except cgroups.CgroupError as exc:
            reason = f"its cgroup could not be made: {exc}"
            log.error("container %s: %s", command.container_id, reason)
        except ImageBuildError as exc:
            reason = f"its image could not be built: {exc}"
            log.error("container %s: %s", command.container_id, reason)
        except ContainerFailed as exc:
            reason = str(exc)
            log.error("container %s failed to start: %s", command.container_id, reason)
        except Exception as exc:
            reason = f"could not start: {exc}"
            log.exception("container %s could not start", command.container_id)
        finally:
            self.containers.pop(command.container_id, None)
            if container is not None:
                await container.stop(grace=1)
                await container.leave_network()
                container.remove_directory()
            if cgroup is not None:
                try:
                    await asyncio.to_thread(cgroup.remove)  # what its app left running goes with it
                except cgroups.CgroupError as exc:
                    log.warning("container %s: %s", command.container_id, exc)
            if container is not None:
                # Its last lines go before the news that it exited: the scheduler forgets a stopped
                # app's lines once its last container is gone.
                await self._logs.handed_over(LAST_WORDS_SECONDS)
            outbox.put_nowait(
                pb.WorkerMessage(exited=pb.ContainerExited(container_id=command.container_id, reason=reason))
            )

    async def _stop_container(self, container_id: str, grace: float) -> None:
        container = self.containers.get(container_id)
        if container is not None:
            await container.stop(grace)

    async def shutdown(self) -> None:
        # Containers stop first, while the stream to the scheduler still carries what they print
        # as they stop (their @modal.exit hooks' output) and that they exited.
        self.stopping = True
        await asyncio.gather(
            *(c.stop(grace=SHUTDOWN_GRACE_SECONDS) for c in list(self.containers.values())), return_exceptions=True
        )
        if self._container_tasks:
            await asyncio.wait(set(self._container_tasks), timeout=LAST_WORDS_SECONDS)
        await self._logs.handed_over(LAST_WORDS_SECONDS)
        if self._connection is not None:
            # Close our side: the scheduler reads everything sent before, then ends the stream.
            self._outbox.put_nowait(None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stream_ended.wait(), LAST_WORDS_SECONDS)
            self._connection.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connection
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.images.stop()
        await self.templates.stop()
        self.snapshots.clear()
        if self.cgroups is not None:
            await asyncio.to_thread(self.cgroups.remove)
        if self.network is not None:
            try:
                await self.network.stop()
            except NetworkError as exc:
                log.warning("container network: %s", exc)
        if self.sandboxes is not None:
            self.sandboxes.clear()  # what stopped containers and templates left
        if self._channel is not None:
            await self._channel.close(None)
        log.info("worker stopped")


def network_config(config: WorkerConfig, dns: DnsPlan) -> NetworkConfig:
    """The worker's container network: its containers may reach the scheduler, the ingresses it
    was told of and a loopback name server, nothing else of this host's (worker/network/firewall.py)."""
    return NetworkConfig(
        worker_id=config.worker_id,
        work_dir=str(config.work_dir),
        subnet=config.container_subnet,
        bridge=config.container_bridge,
        advertise_host=config.advertise_host,
        host_services=(config.scheduler, *config.ingress_addresses),
        dns_forward=str(dns.forward_to or ""),
    )
