"""How the worker reaches registries: a mirror for Docker Hub, credentials per registry, which
registries may be spoken to over plain http, and where pulled blobs are kept. Built from the
worker's flags by `RegistryConfig.from_flags`; the dataclass itself is cheap and does no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from worker.registry.reference import DOCKER_HUB

# Docker's config.json names Docker Hub "https://index.docker.io/v1/"; all of these mean it.
_DOCKER_HUB_KEYS = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print a password in a log or a traceback
        return f"Credentials(username={self.username!r}, password=***)"


@dataclass(frozen=True)
class RegistryConfig:
    mirror: str = ""  # e.g. "http://127.0.0.1:5000": asked instead of Docker Hub for docker.io images
    credentials: Mapping[str, Credentials] = field(default_factory=dict)  # by registry host[:port]
    insecure_registries: frozenset[str] = frozenset()  # host[:port] spoken to over http (loopback always is)
    cache_dir: Path | None = None  # content-addressed blobs; None: each pull downloads into a temporary dir
    concurrent_downloads: int = 3

    def credentials_for(self, host: str) -> Credentials | None:
        return self.credentials.get(registry_key(host))

    @classmethod
    def from_flags(
        cls,
        *,
        mirror: str = "",
        auth_file: Path | None = None,
        credentials: Sequence[str] = (),
        insecure_registries: Sequence[str] = (),
        cache_dir: Path | None = None,
    ) -> RegistryConfig:
        """The config the worker's flags describe. `auth_file` is in Docker's config.json format
        (`{"auths": {"ghcr.io": {"auth": base64("user:password")}}}`); each of `credentials` is
        `host=user:password` and wins over the file. ValueError says which flag is malformed."""
        if mirror:
            parts = urlsplit(mirror)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"registry mirror {mirror!r} is not an http:// or https:// URL")
        found: dict[str, Credentials] = {}
        if auth_file is not None:
            found.update(read_auth_file(auth_file))
        for entry in credentials:
            host, eq, user_password = entry.partition("=")
            username, colon, password = user_password.partition(":")
            if not (eq and colon and host and username):
                named = f" for {host!r}" if eq else ""  # never echo what may be a password
                raise ValueError(f"a registry credential{named} is not host=user:password")
            found[registry_key(host)] = Credentials(username, password)
        return cls(
            mirror=mirror.rstrip("/"),
            credentials=found,
            insecure_registries=frozenset(registry_key(host) for host in insecure_registries),
            cache_dir=cache_dir,
        )


def read_auth_file(path: Path) -> dict[str, Credentials]:
    """The `auths` of a Docker config.json; ValueError names the file and the entry that is wrong."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"registry auth file {path}: {exc}") from None
    auths = document.get("auths", {}) if isinstance(document, dict) else None
    if not isinstance(auths, dict):
        raise ValueError(f"registry auth file {path}: expected an object with an 'auths' object")
    found: dict[str, Credentials] = {}
    for host, entry in auths.items():
        if not isinstance(entry, dict):
            raise ValueError(f"registry auth file {path}: entry {host!r} is not an object")
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(entry["auth"], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError, TypeError):
                raise ValueError(
                    f"registry auth file {path}: 'auth' of {host!r} is not base64 of user:password"
                ) from None
            username, colon, password = decoded.partition(":")
            if not colon:
                raise ValueError(f"registry auth file {path}: 'auth' of {host!r} is not base64 of user:password")
        elif entry.get("username"):
            username, password = str(entry["username"]), str(entry.get("password", ""))
        else:
            continue  # credential helpers ("credsStore") are not read; such entries carry nothing here
        found[registry_key(host)] = Credentials(username, password)
    return found


def registry_key(host: str) -> str:
    """The host[:port] a registry is known by, from how config.json or a flag writes it."""
    if "://" in host:
        host = urlsplit(host).netloc
    host = host.split("/", 1)[0].lower()
    return DOCKER_HUB if host in _DOCKER_HUB_KEYS else host
