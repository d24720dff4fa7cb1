"""`stoker token create|list|revoke`: proxy-auth tokens for `requires_proxy_auth` endpoints."""

from __future__ import annotations

import time

from client.connection import scheduler_stub
from protos import stoker_pb2 as pb


def create() -> pb.CreateTokenResponse:
    with scheduler_stub() as stub:
        return stub.CreateToken(pb.CreateTokenRequest(), timeout=30)


def list_tokens() -> list[pb.TokenInfo]:
    with scheduler_stub() as stub:
        return list(stub.ListTokens(pb.ListTokensRequest(), timeout=30).tokens)


def revoke(key: str) -> None:
    with scheduler_stub() as stub:
        stub.RevokeToken(pb.RevokeTokenRequest(key=key), timeout=30)


def format_tokens(tokens: list[pb.TokenInfo]) -> str:
    if not tokens:
        return "No proxy tokens. Create one with `stoker token create`."
    lines = ["KEY                        CREATED"]
    for t in tokens:
        lines.append(f"{t.key:<26} {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(t.created_at))}")
    return "\n".join(lines)
