"""Pulling OCI and Docker images over the Docker Registry HTTP API v2 into a root filesystem directory.

`pull(reference, dest, config, output)` is the one entry point; `RegistryConfig.from_flags` builds
its config from the worker's flags (a mirror URL for Docker Hub, a Docker config.json of
credentials, `host=user:password` credentials, registries allowed over plain http, the blob cache).
A mirror replaces Docker Hub outright: a pull never falls back from it to Hub."""

from worker.registry.config import Credentials, RegistryConfig
from worker.registry.errors import (
    AuthRefused,
    BadLayer,
    ImageNotFound,
    InvalidReference,
    PlatformNotFound,
    RegistryError,
    RegistryUnreachable,
    UnsupportedImage,
)
from worker.registry.pull import PulledImage, pull
from worker.registry.reference import Reference, parse_reference

__all__ = [
    "AuthRefused",
    "BadLayer",
    "Credentials",
    "ImageNotFound",
    "InvalidReference",
    "PlatformNotFound",
    "PulledImage",
    "Reference",
    "RegistryConfig",
    "RegistryError",
    "RegistryUnreachable",
    "UnsupportedImage",
    "parse_reference",
    "pull",
]
