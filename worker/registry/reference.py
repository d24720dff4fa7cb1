"""Image references parsed as Docker parses them: `python:3.12-slim` is
`docker.io/library/python:3.12-slim`, a first component with a dot, a colon or `localhost` names
the registry, `@sha256:...` pins a digest, and the tag defaults to `latest`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from worker.registry.errors import InvalidReference

DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_HOST_LABEL = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_DOMAIN = re.compile(rf"(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?")
_MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    domain: str  # the registry as named: "docker.io", "ghcr.io", "localhost:5000"
    repository: str  # "library/python", "org/img"
    tag: str | None
    digest: str | None  # "sha256:<64 hex>"; when set, it wins over the tag

    @property
    def manifest_ref(self) -> str:
        """What to ask the registry's manifests endpoint for: the digest, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        name = f"{self.domain}/{self.repository}"
        if self.tag:
            name += f":{self.tag}"
        if self.digest:
            name += f"@{self.digest}"
        return name


def parse_reference(text: str) -> Reference:
    """`text` as Docker reads it; InvalidReference says what is wrong with it."""
    if not text or text != text.strip():
        raise InvalidReference(f"image reference {text!r} is empty or has surrounding spaces")
    remainder, digest = text, None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        _check_digest(text, digest)
    tag = None
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InvalidReference(
                f"image reference {text!r}: tag {tag!r} is not valid "
                "(letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')"
            )
    domain, path = _split_domain(remainder)
    if not _DOMAIN.fullmatch(domain):
        raise InvalidReference(f"image reference {text!r}: {domain!r} is not a registry host[:port]")
    components = path.split("/")
    for component in components:
        if not _PATH_COMPONENT.fullmatch(component):
            raise InvalidReference(
                f"image reference {text!r}: repository component {component!r} is not valid "
                "(lowercase letters and digits, separated by '.', '_', '__' or '-')"
            )
    if len(path) > _MAX_NAME:
        raise InvalidReference(f"image reference {text!r}: repository name is longer than {_MAX_NAME} characters")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(domain=domain, repository=path, tag=tag, digest=digest)


def _split_domain(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    names_a_registry = "." in first or ":" in first or first == "localhost" or first.lower() != first
    if not slash or not names_a_registry:
        domain, path = DOCKER_HUB, name
    else:
        domain, path = first, rest
    if domain in _DOCKER_HUB_ALIASES:
        domain = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"  # official images live under library/
    return domain, path


def _check_digest(text: str, digest: str) -> None:
    if not _DIGEST.fullmatch(digest):
        raise InvalidReference(f"image reference {text!r}: {digest!r} is not a digest (expected sha256:<64 hex>)")
    algorithm, _, hex_part = digest.partition(":")
    if algorithm == "sha256" and not re.fullmatch(r"[0-9a-f]{64}", hex_part):
        raise InvalidReference(f"image reference {text!r}: a sha256 digest is 64 lowercase hex digits")
    if algorithm != "sha256":
        raise InvalidReference(f"image reference {text!r}: only sha256 digests are supported, not {algorithm!r}")
