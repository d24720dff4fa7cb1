"""The workspace's settings: `stoker secret create|list|delete` and `stoker token create|list|revoke`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from client.cli.errors import reports_errors


@reports_errors(OSError)  # a --from-dotenv file that cannot be read
def secret_create(
    name: str,
    pairs: Annotated[list[str] | None, typer.Argument(help="KEY=VALUE pairs.")] = None,
    from_dotenv: Annotated[Path | None, typer.Option("--from-dotenv", help="Read KEY=VALUE lines from a file.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a secret of that name.")] = False,
) -> None:
    """Create a secret from KEY=VALUE pairs (and/or a .env file). Values are never printed."""
    from client.cli.secrets import create, parse_dotenv, parse_pairs

    values = parse_dotenv(from_dotenv) if from_dotenv else {}
    values.update(parse_pairs(pairs or []))
    create(name, values, force)
    print(f"Created secret {name} with keys: {', '.join(sorted(values))}")


@reports_errors()
def secret_list() -> None:
    """List secrets and their keys (never their values)."""
    from client.cli.secrets import format_secrets, list_secrets

    print(format_secrets(list_secrets()))


@reports_errors()
def secret_delete(name: str) -> None:
    """Delete a secret. Running containers keep the values they started with."""
    from client.cli.secrets import delete

    delete(name)
    print(f"Deleted secret {name}.")


@reports_errors()
def token_create() -> None:
    """Create a proxy-auth token; its secret is shown this once."""
    from client.cli.tokens import create

    token = create()
    print(f"Token key: {token.key}")
    print(f"Token secret: {token.secret}")
    print("Send them as the headers Modal-Key and Modal-Secret (or Authorization: Bearer <key>.<secret>).")
    print("The secret is not stored and cannot be shown again.")


@reports_errors()
def token_list() -> None:
    """List proxy-auth tokens (keys only)."""
    from client.cli.tokens import format_tokens, list_tokens

    print(format_tokens(list_tokens()))


@reports_errors()
def token_revoke(key: str) -> None:
    """Revoke a proxy-auth token: every ingress refuses it within a second."""
    from client.cli.tokens import revoke

    revoke(key)
    print(f"Revoked {key}.")
