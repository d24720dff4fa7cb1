"""Named secrets: sets of environment variables given to the containers of functions that name
them. Values go to workers over the authenticated worker stream and into container environments;
they are never logged, listed or echoed."""

from __future__ import annotations

import re
import time

import grpc

from protos import stoker_pb2 as pb
from scheduler.apps import APP_NAME, AppError
from scheduler.cluster import Cluster
from scheduler.store import Store

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Secrets:
    def __init__(self, store: Store, cluster: Cluster) -> None:
        self.store = store
        self.cluster = cluster
        self._publish()

    def create(self, name: str, values: dict[str, str], overwrite: bool) -> None:
        if not APP_NAME.match(name):
            raise AppError(grpc.StatusCode.INVALID_ARGUMENT, f"secret name {name!r} is not valid: use letters, "
                           "digits, '.', '_' or '-'")  # fmt: skip
        if not values:
            raise AppError(grpc.StatusCode.INVALID_ARGUMENT, f"secret {name!r} needs at least one KEY=VALUE")
        bad = [k for k in values if not _KEY.match(k)]
        if bad:
            raise AppError(grpc.StatusCode.INVALID_ARGUMENT, f"not valid environment variable names: {', '.join(bad)}")
        if name in self.store.secrets() and not overwrite:
            raise AppError(grpc.StatusCode.ALREADY_EXISTS, f"secret {name!r} exists; pass --force to replace it")
        self.store.put_secret(name, values, time.time())
        self._publish()

    def list(self) -> list[pb.SecretInfo]:
        return [
            pb.SecretInfo(name=name, keys=sorted(values), created_at=created)
            for name, (values, created) in self.store.secrets().items()
        ]

    def delete(self, name: str) -> None:
        if not self.store.delete_secret(name):
            raise AppError(grpc.StatusCode.NOT_FOUND, f"no secret named {name!r}")
        self._publish()

    def _publish(self) -> None:
        self.cluster.set_secrets({name: values for name, (values, _) in self.store.secrets().items()})
