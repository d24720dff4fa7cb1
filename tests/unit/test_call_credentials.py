"""Containers' call credentials: minted per app, verified, refused when forged."""

from __future__ import annotations

from scheduler import call_credentials


def test_minted_credential_names_its_app() -> None:
    key = call_credentials.derive_key("cs-secret")
    token = call_credentials.mint(key, "ap-123")
    assert token.startswith("call.ap-123.")
    assert call_credentials.verify(key, token) == "ap-123"


def test_forged_or_foreign_credentials_are_refused() -> None:
    key = call_credentials.derive_key("cs-secret")
    token = call_credentials.mint(key, "ap-123")
    assert call_credentials.verify(key, token.replace("ap-123", "ap-456")) is None
    assert call_credentials.verify(call_credentials.derive_key("cs-other"), token) is None
    assert call_credentials.verify(key, "wt-workspace-token") is None
    assert call_credentials.verify(b"", token) is None
