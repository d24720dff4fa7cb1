"""`stoker token create|list|revoke`: proxy-auth tokens for `requires_proxy_auth` endpoints."""

from __future__ import annotations

import time

from client.connection import rpc_errors, scheduler_stub
from protos import stoker_pb2 as pb


def create() -> pb.CreateTokenResponse:
    stub, metadata = scheduler_stub()
    with rpc_errors():
        return stub.CreateToken(pb.CreateTokenRequest(), metadata=metadata, timeout=30)


def list_tokens() -> list[pb.TokenInfo]:
    stub, metadata = scheduler_stub()
    with rpc_errors():
        return list(stub.ListTokens(pb.ListTokensRequest(), metadata=metadata, timeout=30).tokens)


def revoke(key: str) -> None:
    stub, metadata = scheduler_stub()
    with rpc_errors():
        stub.RevokeToken(pb.RevokeTokenRequest(key=key), metadata=metadata, timeout=30)


def format_tokens(tokens: list[pb.TokenInfo]) -> str:
    if not tokens:
        return "No proxy tokens. Create one with `stoker token create`."
    lines = ["KEY                        CREATED"]
    for t in tokens:
        lines.append(f"{t.key:<26} {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(t.created_at))}")
    return "\n".join(lines)
