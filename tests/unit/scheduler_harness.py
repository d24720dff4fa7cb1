"""A real Cluster and Apps with one deployed web function and one ingress session, without
sockets: the scheduler's decisions are read off the ingress's outbox."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from protos import stoker_pb2 as pb
from scheduler.apps import Apps
from scheduler.cluster import Cluster
from scheduler.model import FunctionState, IngressSession, WorkerSession
from scheduler.store import Store

APP_NAME = "held"


def minimal_bundle() -> bytes:
    """The smallest code bundle a deploy accepts: an app.py that imports modal."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "import modal\n")
    return buffer.getvalue()


def app_definition(max_inputs: int) -> pb.AppDefinition:
    web = pb.WebEndpoint(kind="fastapi_endpoint", method="GET")
    return pb.AppDefinition(
        name=APP_NAME,
        entry="app.py",
        bundle=minimal_bundle(),
        functions=[pb.FunctionSpec(name="page", web=web, max_inputs=max_inputs, min_containers=1, max_containers=1)],
    )


@dataclass
class Harness:
    cluster: Cluster
    apps: Apps
    ingress: IngressSession
    fn: FunctionState

    def deploy_again(self, max_inputs: int) -> FunctionState:
        """A new version of the app (as a `stoker serve` reload makes): returns its function."""
        self.apps.deploy(app_definition(max_inputs), "", ephemeral=False)
        (fn,) = self.cluster.functions.values()
        return fn


def harness(tmp_path: Path, max_inputs: int) -> Harness:
    cluster = Cluster(queue_timeout=5)
    cluster.add_worker(WorkerSession(info=pb.WorkerRegister(worker_id="w1", hostname="h")))
    apps = Apps(Store(tmp_path / "stoker.db"), cluster, "ws", "localhost", "http", 8000)
    apps.deploy(app_definition(max_inputs), "", ephemeral=False)
    ingress = IngressSession(id="in-1")
    cluster.add_ingress(ingress)
    (fn,) = cluster.functions.values()
    events(ingress)  # the route table and edge config
    return Harness(cluster, apps, ingress, fn)


def warm(cluster: Cluster, fn: FunctionState) -> None:
    """Its one container reports that it is up."""
    (container,) = fn.containers.values()
    cluster.container_started(container.id, "127.0.0.1:9")


def events(ingress: IngressSession) -> list[pb.IngressEvent]:
    """What the scheduler has sent this ingress since the last call."""
    sent = []
    while not ingress.outbox.empty():
        event = ingress.outbox.get_nowait()
        if event is not None:
            sent.append(event)
    return sent


def kinds(sent: list[pb.IngressEvent]) -> list[str]:
    return [str(e.WhichOneof("kind")) for e in sent]
