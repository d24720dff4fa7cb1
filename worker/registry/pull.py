"""`pull`: an image from a registry, unpacked into one root filesystem directory, with its config."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from worker.registry.cache import BlobCache
from worker.registry.client import RegistryClient
from worker.registry.config import RegistryConfig
from worker.registry.endpoint import endpoint_for
from worker.registry.errors import PlatformNotFound, RegistryError, UnsupportedImage
from worker.registry.manifest import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    choose_platform,
    parse_image_config,
    parse_manifest,
    this_platform,
)
from worker.registry.reference import Reference, parse_reference
from worker.registry.unpack import LayerStats, unpack_layer

Output = Callable[[str], None]

# Layer media types we unpack; the bytes' magic decides the compression (see unpack.py).
_LAYER_TYPES = {
    "",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}
PROGRESS_FROM = 32 << 20  # a layer this large also reports each quarter downloaded
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)


@dataclass(frozen=True)
class PulledImage:
    reference: str  # as Docker spells it in full: "docker.io/library/python:3.12-slim"
    digest: str  # of this platform's manifest: names exactly these layers and config, so an image id
    config_digest: str
    platform: str  # "linux/amd64"
    layers: tuple[str, ...]  # digests, lowest first
    root: Path  # the unpacked root filesystem
    env: dict[str, str]
    workdir: str
    user: str
    entrypoint: tuple[str, ...]  # for information: stoker runs its own runtime in the image
    cmd: tuple[str, ...]


async def pull(reference: str, dest: Path, config: RegistryConfig, output: Output) -> PulledImage:
    """Pull `reference` and unpack it into `dest` (which must not exist yet; it appears whole, or
    not at all). Blobs already in `config.cache_dir` are not downloaded again. RegistryError (or a
    subclass) says which image, which registry and what went wrong."""
    ref = parse_reference(reference)
    _check_free(dest, ref)
    endpoint = endpoint_for(ref, config)
    with _blob_cache(config) as cache:
        cache.prepare()
        output(f"pulling {ref} from {endpoint.name}")
        # Not trust_env: a ~/.netrc entry would clash with the Authorization a challenge gives.
        async with aiohttp.ClientSession(timeout=_TIMEOUT, trust_env=False) as session:
            client = RegistryClient(session, endpoint, ref.repository)
            manifest, digest, platform = await _image_manifest(client, cache, ref, output)
            config_path = await _fetch(client, cache, manifest.config, f"the config of {ref}")
            image_config = parse_image_config(config_path.read_bytes(), str(ref))
            _check_platform(image_config.platform, platform, ref)
            for layer in manifest.layers:
                if layer.media_type not in _LAYER_TYPES:
                    raise UnsupportedImage(
                        f"{ref} has a layer of type {layer.media_type!r}, which stoker cannot unpack yet"
                    )
            partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
            partial.mkdir(parents=True)
            try:
                await _pull_layers(client, cache, manifest, partial, ref, config.concurrent_downloads, output)
                partial.rename(dest)
            finally:
                if partial.exists():
                    await asyncio.to_thread(shutil.rmtree, partial, ignore_errors=True)
    total = sum(layer.size for layer in manifest.layers)
    output(f"pulled {ref} ({_short(digest)}, {len(manifest.layers)} layers, {_size(total)})")
    return PulledImage(
        reference=str(ref),
        digest=digest,
        config_digest=manifest.config.digest,
        platform=str(platform),
        layers=tuple(layer.digest for layer in manifest.layers),
        root=dest,
        env=image_config.env,
        workdir=image_config.workdir,
        user=image_config.user,
        entrypoint=image_config.entrypoint,
        cmd=image_config.cmd,
    )


async def _image_manifest(
    client: RegistryClient, cache: BlobCache, ref: Reference, output: Output
) -> tuple[ImageManifest, str, Platform]:
    """This machine's manifest for `ref`, its digest and platform; an index is followed once."""
    wanted = this_platform()
    body, digest = await _manifest(client, cache, ref.manifest_ref, str(ref))
    document = parse_manifest(body, "", str(ref))
    if isinstance(document, ImageIndex):
        entry = choose_platform(document, wanted, str(ref))
        output(f"{ref} has images for {len(document.manifests)} platforms; using {entry.platform}")
        body, digest = await _manifest(client, cache, entry.digest, f"{ref} for {entry.platform}")
        document = parse_manifest(body, "", f"{ref} for {entry.platform}")
        if not isinstance(document, ImageManifest):
            raise RegistryError(
                f"the index of {ref} points {entry.platform} at another index; nested indexes are not supported yet"
            )
    return document, digest, wanted


async def _manifest(client: RegistryClient, cache: BlobCache, reference: str, what: str) -> tuple[bytes, str]:
    # A digest names content for good, so a cached one is used; a tag can move, so it is always asked.
    if reference.startswith("sha256:") and cache.has(reference):
        return cache.path(reference).read_bytes(), reference
    fetched = await client.manifest(reference, what)
    path = cache.path(fetched.digest)
    aside = path.with_name(f"{path.name}.partial-{secrets.token_hex(4)}")
    aside.write_bytes(fetched.body)
    aside.replace(path)
    return fetched.body, fetched.digest


async def _fetch(
    client: RegistryClient, cache: BlobCache, blob: Descriptor, what: str, progress: Callable[[int], None] | None = None
) -> Path:
    path = cache.path(blob.digest)
    if not path.is_file():
        await client.blob(blob.digest, blob.size, path, what, progress)
    return path


def _quarters(label: str, size: int, output: Output) -> Callable[[int], None] | None:
    """A progress callback that says how far a large download is at each quarter of it."""
    if size < PROGRESS_FROM:
        return None
    said = 0

    def progress(received: int) -> None:
        nonlocal said
        quarter = min(4, received * 4 // size)
        if quarter > said and quarter < 4:
            said = quarter
            output(f"{label}: {_size(received)} of {_size(size)}")

    return progress


async def _pull_layers(
    client: RegistryClient,
    cache: BlobCache,
    manifest: ImageManifest,
    root: Path,
    ref: Reference,
    concurrency: int,
    output: Output,
) -> None:
    """Download the layers a few at a time, and unpack each, in order, as soon as it and the ones
    below it are there."""
    gate = asyncio.Semaphore(max(1, concurrency))
    count = len(manifest.layers)

    async def download(number: int, layer: Descriptor) -> Path:
        label = f"layer {number}/{count} {_short(layer.digest)} ({_size(layer.size)})"
        if cache.has(layer.digest):
            output(f"{label} already pulled")
            return cache.path(layer.digest)
        async with gate:
            output(f"pulling {label}")
            return await _fetch(client, cache, layer, f"layer {number} of {ref}", _quarters(label, layer.size, output))

    try:
        async with asyncio.TaskGroup() as group:
            downloads: dict[str, asyncio.Task[Path]] = {}
            for number, layer in enumerate(manifest.layers, 1):
                if layer.digest not in downloads:  # one download for a layer the image repeats
                    downloads[layer.digest] = group.create_task(
                        download(number, layer), name=f"registry-pull-{layer.digest[7:19]}"
                    )
            for number, layer in enumerate(manifest.layers, 1):
                path = await downloads[layer.digest]
                output(f"unpacking layer {number}/{count} {_short(layer.digest)}")
                stats = await _unpack(path, root, f"layer {number} of {ref}")
                if stats.devices_skipped:
                    output(f"layer {number}/{count}: skipped {stats.devices_skipped} device nodes (not allowed here)")
    except ExceptionGroup as failed:  # one layer's own error reads better than a group of them
        errors: list[Exception] = [error for error in failed.exceptions if isinstance(error, RegistryError)]
        raise (errors or list(failed.exceptions))[0] from None


async def _unpack(layer: Path, root: Path, what: str) -> LayerStats:
    work = asyncio.ensure_future(asyncio.to_thread(unpack_layer, layer, root, what))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])  # a thread cannot be stopped: let it finish before its directory is removed
        raise


def _check_free(dest: Path, ref: Reference) -> None:
    if os.path.lexists(dest):
        raise RegistryError(f"cannot pull {ref} into {dest}: it already exists")


def _check_platform(built_for: Platform, wanted: Platform, ref: Reference) -> None:
    if (
        built_for.os
        and built_for.architecture
        and (built_for.os, built_for.architecture) != (wanted.os, wanted.architecture)
    ):
        raise PlatformNotFound(f"{ref} is built for {built_for}; this worker is {wanted}")


@contextlib.contextmanager
def _blob_cache(config: RegistryConfig) -> Iterator[BlobCache]:
    if config.cache_dir is not None:
        yield BlobCache(config.cache_dir)
        return
    with tempfile.TemporaryDirectory(prefix="stoker-pull-") as scratch:
        yield BlobCache(Path(scratch))


def _short(digest: str) -> str:
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}:{hex_part[:12]}…"


def _size(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MiB"
    return f"{size / 1024:.1f} KiB"
