"""Who may call the scheduler: a gRPC interceptor, and the secrets it checks.

Clients (CLI, SDK) present a workspace token as `authorization: Bearer <token>`. Workers and
ingresses present the cluster secret as `x-stoker-cluster-secret`; only they may hold the worker
and ingress streams or fetch code bundles. `Status` takes either. Everything else is refused
with UNAUTHENTICATED, before the handler runs. Containers present a call credential instead
(scheduler/call_credentials.py), good for the function-call RPCs only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from protos.channels import CLUSTER_SECRET_HEADER
from scheduler import call_credentials

CLUSTER_ONLY = frozenset({"WorkerConnect", "IngressConnect", "GetBundle", "GetImageBlob"})
EITHER = frozenset({"Status"})

NO_TOKEN = (
    "this call needs a workspace token: run `stoker up` on this machine (it writes one to "
    "~/.stoker/config.json), or set STOKER_TOKEN to the token in the scheduler's state dir "
    "(file workspace-token)"
)
BAD_TOKEN = "the workspace token is not valid on this cluster; set STOKER_TOKEN to one that is"
NO_SECRET = "workers and ingresses must present the cluster secret (STOKER_CLUSTER_SECRET)"
CALLS_ONLY = (
    "a container's call credential is good only for function calls "
    "(LookupFunction, Call, Spawn, CallResult, CancelCall, CallGraph)"
)
BAD_CALL_CREDENTIAL = "the container's call credential is not valid on this cluster"


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_secret(prefix: str, nbytes: int = 24) -> str:
    """`prefix` and `nbytes` random bytes, URL-safe base64 without padding."""
    return prefix + secrets.token_urlsafe(nbytes)


def read_or_create(path: Path, prefix: str, nbytes: int = 24) -> tuple[str, bool]:
    """The secret kept in `path` (mode 0600), created on first use; and whether it was new."""
    if path.exists():
        return path.read_text().strip(), False
    value = new_secret(prefix, nbytes)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value, True


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, cluster_secret: str, workspace_tokens: set[bytes], call_key: bytes = b"") -> None:
        self.cluster_secret = cluster_secret.encode()
        self.workspace_tokens = workspace_tokens  # SHA-256 digests, as the store held them at startup
        self.call_key = call_key  # verifies containers' call credentials; empty: none accepted

    def _allowed(self, method: str, metadata: dict[str, str]) -> str | None:
        """None when the call may proceed, else why not."""
        presented = metadata.get(CLUSTER_SECRET_HEADER, "").encode()
        is_cluster = bool(presented) and hmac.compare_digest(presented, self.cluster_secret)
        if method in CLUSTER_ONLY:
            return None if is_cluster else NO_SECRET
        if method in EITHER and is_cluster:
            return None
        scheme, _, token = metadata.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return NO_TOKEN
        if call_credentials.is_call_credential(token.strip()):
            if call_credentials.verify(self.call_key, token.strip()) is None:
                return BAD_CALL_CREDENTIAL
            return None if method in call_credentials.CALL_METHODS else CALLS_ONLY
        return None if digest(token.strip()) in self.workspace_tokens else BAD_TOKEN

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method.rsplit("/", 1)[-1]
        metadata = {k: v for k, v in (handler_call_details.invocation_metadata or ()) if isinstance(v, str)}
        reason = self._allowed(method, metadata)
        if reason is None or handler is None:
            return handler
        return _refusal(handler, reason)


def _refusal(handler: grpc.RpcMethodHandler[Any, Any], reason: str) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape that answers UNAUTHENTICATED and runs nothing."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)

    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    make = kinds[(handler.request_streaming, handler.response_streaming)]
    return make(
        refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
