"""What can go wrong pulling an image from a registry, one class per thing the user can act on."""

from __future__ import annotations


class RegistryError(Exception):
    """An image could not be pulled; the message says which image, which registry and why."""


class InvalidReference(RegistryError):
    """The image reference is not one Docker would accept (`python:3.12-slim`, `ghcr.io/org/img@sha256:...`)."""


class ImageNotFound(RegistryError):
    """The registry has no such repository, tag or digest."""


class AuthRefused(RegistryError):
    """The registry (or its token server) refused the credentials, or none were configured and it wants some."""


class RegistryUnreachable(RegistryError):
    """The registry did not answer: connection refused, DNS, TLS or a timeout."""


class UnsupportedImage(RegistryError):
    """The image uses a format we do not read yet (schema 1 manifests, zstd layers without zstandard)."""


class PlatformNotFound(RegistryError):
    """A multi-platform image has no variant for this machine."""


class BadLayer(RegistryError):
    """A layer is corrupt or hostile (a member that points outside the image, a digest that does not match)."""
