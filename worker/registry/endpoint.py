"""Which URL to ask for a reference: Docker Hub's API host (or the operator's mirror in its place),
https by default, plain http only for loopback and the registries the operator marked insecure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from worker.registry.config import Credentials, RegistryConfig, registry_key
from worker.registry.reference import DOCKER_HUB, Reference

DOCKER_HUB_API = "https://registry-1.docker.io"


@dataclass(frozen=True)
class Endpoint:
    base_url: str  # "https://registry-1.docker.io", "http://127.0.0.1:5000"
    name: str  # how messages name the registry: its host[:port]
    credentials: Credentials | None


def endpoint_for(reference: Reference, config: RegistryConfig) -> Endpoint:
    if reference.domain == DOCKER_HUB:
        base_url = config.mirror or DOCKER_HUB_API
        host = urlsplit(base_url).netloc
        # Hub's own credentials only go to Hub; a mirror gets the ones configured for its host.
        credentials = config.credentials_for(host if config.mirror else DOCKER_HUB)
        return Endpoint(base_url=base_url, name=host, credentials=credentials)
    host = reference.domain
    scheme = "http" if is_loopback(host) or registry_key(host) in config.insecure_registries else "https"
    return Endpoint(base_url=f"{scheme}://{host}", name=host, credentials=config.credentials_for(host))


def is_loopback(host: str) -> bool:
    name = urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
