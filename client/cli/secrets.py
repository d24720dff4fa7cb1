"""`stoker secret create|list|delete`: named sets of environment variables for containers."""

from __future__ import annotations

import time
from pathlib import Path

from client.connection import rpc_errors, scheduler_stub
from client.exceptions import InvalidError
from protos import stoker_pb2 as pb


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, pair in enumerate(pairs, 1):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            # Not echoed: a mistyped pair may hold the secret value itself.
            raise InvalidError(f"pair {number} is not KEY=VALUE (its text is not shown, as it may be secret)")
        values[key] = value
    return values


def parse_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines, comments and `export ` prefixes allowed; quotes stripped."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise InvalidError(f"{path}:{number} is not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def create(name: str, values: dict[str, str], overwrite: bool) -> None:
    stub, metadata = scheduler_stub()
    with rpc_errors():
        request = pb.CreateSecretRequest(name=name, values=values, overwrite=overwrite)
        stub.CreateSecret(request, metadata=metadata, timeout=30)


def list_secrets() -> list[pb.SecretInfo]:
    stub, metadata = scheduler_stub()
    with rpc_errors():
        return list(stub.ListSecrets(pb.ListSecretsRequest(), metadata=metadata, timeout=30).secrets)


def delete(name: str) -> None:
    stub, metadata = scheduler_stub()
    with rpc_errors():
        stub.DeleteSecret(pb.DeleteSecretRequest(name=name), metadata=metadata, timeout=30)


def format_secrets(secrets: list[pb.SecretInfo]) -> str:
    if not secrets:
        return "No secrets. Create one with `stoker secret create NAME KEY=VALUE ...`."
    width = max(len("NAME"), *(len(s.name) for s in secrets))
    lines = [f"{'NAME':<{width}}  CREATED              KEYS"]
    for s in secrets:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.created_at))
        lines.append(f"{s.name:<{width}}  {created}  {', '.join(s.keys)}")
    return "\n".join(lines)
