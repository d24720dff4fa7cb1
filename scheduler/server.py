"""The scheduler daemon: startup, serve until told to stop, ordered shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import grpc

from protos import stoker_pb2_grpc as pb_grpc
from scheduler import auth, call_credentials, state_dir
from scheduler.apps import Apps
from scheduler.cluster import Cluster
from scheduler.config import SchedulerConfig
from scheduler.secrets import Secrets
from scheduler.servicer import SchedulerServicer
from scheduler.store import Store, StoreError
from scheduler.tokens import Tokens

log = logging.getLogger(__name__)

MAX_MESSAGE = 128 * 1024 * 1024  # a deploy carries its code bundle
TICK_SECONDS = 0.25


class SchedulerServer:
    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self.stopped = asyncio.Event()
        self.port = 0
        self._grpc: grpc.aio.Server | None = None
        self._store: Store | None = None
        self._tick: asyncio.Task[None] | None = None
        self._servicer: SchedulerServicer | None = None

    async def startup(self) -> None:
        c = self.config
        state_dir.make_private(c.state_dir)
        try:
            self._store = Store(c.database)
        except StoreError as exc:
            raise SystemExit(f"Error: the scheduler cannot open its state in {c.state_dir}: {exc}") from None
        cluster_secret = c.cluster_secret or auth.read_or_create(c.state_dir / "cluster-secret", "cs-")[0]
        call_key = call_credentials.derive_key(cluster_secret)
        cluster = Cluster(queue_timeout=c.queue_timeout, workspace=c.workspace, call_key=call_key)
        secrets = Secrets(self._store, cluster)  # before apps: the containers they start need them
        apps = Apps(
            self._store, cluster, c.workspace, c.domain, c.web_scheme, c.web_port or 8000, fixed=c.web_port != 0
        )
        apps.load()
        tokens = Tokens(self._store, cluster)
        # The first workspace token, for `stoker up` to hand to this machine's CLI.
        workspace_token, created = auth.read_or_create(c.state_dir / "workspace-token", "wt-")
        self._store.add_workspace_token(auth.digest(workspace_token), time.time())
        if created:
            log.info("created a workspace token in %s", c.state_dir / "workspace-token")
        interceptor = auth.AuthInterceptor(cluster_secret, self._store.workspace_tokens(), call_key)
        self._grpc = grpc.aio.server(
            interceptors=[interceptor],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.keepalive_time_ms", 10_000),
                ("grpc.http2.max_pings_without_data", 0),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
            ],
        )
        self._servicer = SchedulerServicer(apps, cluster, self._store, tokens, secrets, call_key)
        pb_grpc.add_SchedulerServicer_to_server(self._servicer, self._grpc)
        try:
            if c.tls_cert and c.tls_key:
                credentials = grpc.ssl_server_credentials([(c.tls_key.read_bytes(), c.tls_cert.read_bytes())])
                self.port = self._grpc.add_secure_port(f"{c.host}:{c.port}", credentials)
            else:
                self.port = self._grpc.add_insecure_port(f"{c.host}:{c.port}")
        except RuntimeError:  # how grpc says it could not bind
            self.port = 0
        if self.port == 0:
            # One line for the operator, not a traceback: exit status 1.
            raise SystemExit(f"Error: the scheduler cannot listen on {c.host}:{c.port}: in use, or not this host's")
        await self._grpc.start()
        self._tick = asyncio.create_task(self._upkeep(cluster), name="scheduler-upkeep")
        if c.port_file is not None:
            c.port_file.write_text(json.dumps({"grpc": self.port}))
        log.info("scheduler listening on %s:%d (state in %s)", c.host, self.port, c.state_dir)

    async def _upkeep(self, cluster: Cluster) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                now = time.monotonic()
                for worker in list(cluster.workers.values()):
                    if now - worker.last_heartbeat > self.config.heartbeat_timeout:
                        log.warning("worker %s missed its heartbeats; dropping it", worker.id)
                        cluster.remove_worker(worker)
                        worker.hang_up()
                cluster.tick(now)
            except Exception:
                log.exception("scheduler upkeep failed")

    async def shutdown(self) -> None:
        if self._grpc is not None:
            await self._grpc.stop(grace=2)
        if self._servicer is not None:
            await self._servicer.calls.close()  # spawned calls still running end here
        if self._tick is not None:
            self._tick.cancel()
            await asyncio.wait([self._tick])  # our own cancel: a cancel of shutdown itself goes on up
        if self._store is not None:
            self._store.close()
        log.info("scheduler stopped")
