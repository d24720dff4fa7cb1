"""Proxy-auth tokens: created, listed and revoked here, checked by every ingress.

A token is a key (`wk-…`, public) and a secret (`ws-…`, shown once at creation). The scheduler
stores the secret's SHA-256 only, and sends ingresses the keys with their digests; a change
reaches every connected ingress at once over its stream.
"""

from __future__ import annotations

import secrets
import time

from protos import stoker_pb2 as pb
from scheduler.auth import digest, new_secret
from scheduler.cluster import Cluster
from scheduler.store import Store


class Tokens:
    def __init__(self, store: Store, cluster: Cluster) -> None:
        self.store = store
        self.cluster = cluster
        self._publish()

    def create(self) -> tuple[str, str]:
        key = "wk-" + secrets.token_hex(10)
        secret = new_secret("ws-")
        self.store.add_proxy_token(key, digest(secret), time.time())
        self._publish()
        return key, secret

    def list(self) -> list[pb.TokenInfo]:
        return [pb.TokenInfo(key=key, created_at=created) for key, _, created in self.store.proxy_tokens()]

    def revoke(self, key: str) -> bool:
        found = self.store.delete_proxy_token(key)
        if found:
            self._publish()
        return found

    def _publish(self) -> None:
        self.cluster.set_proxy_tokens(
            [pb.ProxyToken(key=key, secret_sha256=sha) for key, sha, _ in self.store.proxy_tokens()]
        )
