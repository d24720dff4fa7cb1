"""Secret values at rest: sealed with AES-256-GCM under a key kept beside stoker.db, so a copy of
the database alone reveals nothing (the key file, like the database, is mode 0600 in the 0700
state dir). The values must still reach containers, so they are encrypted, not hashed."""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from scheduler import auth

KEY_FILE = "secrets-key"  # in the state dir, beside stoker.db
_KEY_PREFIX = "sk-"
_SEALED = "aesgcm1:"  # a sealed payload starts with it; an older stoker's are plain JSON
_NONCE_BYTES = 12


class SecretKeyError(Exception):
    """The key to the stored secrets is missing or is not the one they were sealed with."""


def is_sealed(payload: str) -> bool:
    return payload.startswith(_SEALED)


class SecretBox:
    def __init__(self, key: bytes, path: Path) -> None:
        self._aead = AESGCM(key)
        self.path = path  # where the key is kept, for error messages

    @classmethod
    def load(cls, path: Path, *, create: bool) -> SecretBox:
        """The key in `path`; made (0600) when missing and `create`, else SecretKeyError."""
        if not path.exists() and not create:
            raise SecretKeyError(
                f"the secrets in the state store are encrypted, but their key {path} is missing: "
                "restore that file from the state dir they were created in"
            )
        text, _ = auth.read_or_create(path, _KEY_PREFIX, nbytes=32)
        try:
            key = base64.urlsafe_b64decode(text.removeprefix(_KEY_PREFIX) + "==")
        except (ValueError, binascii.Error):
            key = b""
        if len(key) != 32:
            raise SecretKeyError(f"{path} does not hold a stoker secrets key")
        return cls(key, path)

    def seal(self, name: str, values: dict[str, str]) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        # The name is authenticated with the values: a row copied under another name does not open.
        sealed = self._aead.encrypt(nonce, json.dumps(values).encode(), name.encode())
        return _SEALED + base64.b64encode(nonce + sealed).decode()

    def open(self, name: str, payload: str) -> dict[str, str]:
        if not is_sealed(payload):
            values: dict[str, str] = json.loads(payload)  # an older stoker's, until it is sealed
            return values
        raw = base64.b64decode(payload.removeprefix(_SEALED))
        try:
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], name.encode())
        except InvalidTag:
            raise SecretKeyError(
                f"secret {name!r} in the state store does not open with the key in {self.path}: "
                "it was sealed with another key, or the database was altered"
            ) from None
        opened: dict[str, str] = json.loads(plain)
        return opened
