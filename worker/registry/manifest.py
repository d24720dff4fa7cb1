"""The JSON documents a registry serves: image indexes (multi-platform), image manifests (a config
and layers) and the image config, in their OCI and Docker schema-2 spellings, read into dataclasses."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from typing import Any

from worker.registry.errors import PlatformNotFound, RegistryError, UnsupportedImage

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

_INDEX_TYPES = {OCI_INDEX, DOCKER_LIST}
_MANIFEST_TYPES = {OCI_MANIFEST, DOCKER_MANIFEST}
_ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i686": "386"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None  # only on an index's entries


@dataclass(frozen=True)
class ImageManifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class ImageIndex:
    manifests: tuple[Descriptor, ...]


@dataclass(frozen=True)
class ImageConfig:
    env: dict[str, str]
    workdir: str
    user: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    platform: Platform


def this_platform() -> Platform:
    machine = platform.machine().lower()
    if machine.startswith("armv7"):
        return Platform("linux", "arm", "v7")
    return Platform("linux", _ARCHITECTURES.get(machine, machine))


def parse_manifest(body: bytes, content_type: str, what: str) -> ImageManifest | ImageIndex:
    """`body` as served for `what` (an image reference, for messages)."""
    document = _json_object(body, f"the manifest of {what}")
    if document.get("schemaVersion") == 1:
        raise UnsupportedImage(
            f"{what} has a schema 1 manifest; those are not supported yet (push it again with a current docker)"
        )
    media_type = document.get("mediaType") or content_type.split(";")[0].strip()
    if media_type in _INDEX_TYPES or (media_type not in _MANIFEST_TYPES and "manifests" in document):
        return ImageIndex(tuple(_descriptor(entry, what) for entry in _list(document, "manifests", what)))
    if media_type in _MANIFEST_TYPES or "layers" in document:
        config = document.get("config")
        if not isinstance(config, dict):
            raise RegistryError(f"the manifest of {what} has no config descriptor")
        return ImageManifest(
            config=_descriptor(config, what),
            layers=tuple(_descriptor(layer, what) for layer in _list(document, "layers", what)),
        )
    raise UnsupportedImage(f"{what} is a {media_type or 'document of unknown type'}, not an image manifest or index")


def choose_platform(index: ImageIndex, wanted: Platform, what: str) -> Descriptor:
    """The index entry for `wanted`; on arm64 a 'v8' variant or none at all both fit."""
    candidates = [
        entry
        for entry in index.manifests
        if entry.platform
        and entry.platform.os == wanted.os
        and entry.platform.architecture == wanted.architecture
        and (
            entry.platform.variant == wanted.variant
            or (wanted.architecture == "arm64" and entry.platform.variant in ("", "v8"))
        )
    ]
    if not candidates:
        offered = sorted({str(entry.platform) for entry in index.manifests if entry.platform} - {"unknown/unknown"})
        raise PlatformNotFound(
            f"{what} has no image for {wanted} (it has: {', '.join(offered) or 'no platforms listed'})"
        )
    return candidates[0]


def parse_image_config(body: bytes, what: str) -> ImageConfig:
    document = _json_object(body, f"the image config of {what}")
    inner = document.get("config") or {}
    if not isinstance(inner, dict):
        raise RegistryError(f"the image config of {what} has a 'config' that is not an object")
    env: dict[str, str] = {}
    for entry in inner.get("Env") or []:
        name, _, value = str(entry).partition("=")
        env[name] = value
    return ImageConfig(
        env=env,
        workdir=str(inner.get("WorkingDir") or ""),
        user=str(inner.get("User") or ""),
        entrypoint=tuple(str(arg) for arg in inner.get("Entrypoint") or ()),
        cmd=tuple(str(arg) for arg in inner.get("Cmd") or ()),
        platform=Platform(
            str(document.get("os", "")), str(document.get("architecture", "")), str(document.get("variant", ""))
        ),
    )


def _descriptor(entry: Any, what: str) -> Descriptor:
    if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
        raise RegistryError(f"the manifest of {what} has a descriptor without a digest: {entry!r:.200}")
    found = entry.get("platform")
    return Descriptor(
        media_type=str(entry.get("mediaType", "")),
        digest=entry["digest"],
        size=int(entry.get("size", 0)),
        platform=Platform(str(found.get("os", "")), str(found.get("architecture", "")), str(found.get("variant", "")))
        if isinstance(found, dict)
        else None,
    )


def _list(document: dict[str, Any], key: str, what: str) -> list[Any]:
    value = document.get(key)
    if not isinstance(value, list):
        raise RegistryError(f"the manifest of {what} has no '{key}' list")
    return value


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise RegistryError(f"{what} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RegistryError(f"{what} is not a JSON object")
    return document
