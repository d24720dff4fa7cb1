"""Layers: content-addressed directory trees, each the changes one build step made on top of
the layers below it. A layer's id hashes its parent's id and its step, so images that begin with
the same steps share those layers, built once.

`<root>/layers/<id>/` is the tree, `<id>.done` (JSON: what later steps need to know, such as the
image's Python) marks it complete; a directory without its marker is what a build cut short left,
and is built again. `<id>.lock` serialises builds of one layer across workers sharing the root.
Images (`<root>/images/<image id>.json`) name their layers; a prune keeps the images it is told
to keep and the layers they name, and deletes the rest.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def layer_id(parent: str, step: str) -> str:
    return "ly-" + hashlib.sha256(f"{parent}\n{step}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Pruned:
    images: int
    layers: int
    bytes: int


class LayerStore:
    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.layers = self.root / "layers"
        self.images = self.root / "images"

    def path(self, layer: str) -> Path:
        return self.layers / layer

    def meta(self, layer: str) -> dict[str, Any] | None:
        """The layer's marker, None while it is not (completely) built."""
        try:
            return dict(json.loads((self.layers / f"{layer}.done").read_text()))
        except (OSError, ValueError):
            return None

    async def ensure(
        self, layer: str, build: Callable[[Path, Path], Awaitable[dict[str, Any]]]
    ) -> tuple[dict[str, Any], bool]:
        """The layer's marker, and whether it was built now: `build(tree, scratch)` fills the tree
        (`scratch`: an empty directory on the same filesystem) and returns what to record."""
        if (meta := self.meta(layer)) is not None:
            return meta, False
        self.layers.mkdir(parents=True, exist_ok=True)
        lock = await asyncio.to_thread(lock_file, self.layers / f"{layer}.lock")
        try:
            if (meta := self.meta(layer)) is not None:  # another worker built it meanwhile
                return meta, False
            tree, scratch = self.path(layer), self.layers / f"{layer}.scratch"
            for leftover in (tree, scratch):
                await asyncio.to_thread(_remove, leftover)
            tree.mkdir()
            scratch.mkdir()
            try:
                meta = await build(tree, scratch)
            except BaseException:
                await asyncio.to_thread(_remove, tree)
                raise
            finally:
                await asyncio.to_thread(_remove, scratch)
            _write_atomically(self.layers / f"{layer}.done", json.dumps(meta))
            return meta, True
        finally:
            os.close(lock)

    # ------------------------------------------------------------ images

    def image(self, image_id: str) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.images / f"{image_id}.json").read_text()))
        except (OSError, ValueError):
            return None

    def save_image(self, image_id: str, record: dict[str, Any]) -> None:
        self.images.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.images / f"{image_id}.json", json.dumps(record))

    def prune(self, keep: Iterable[str], keep_layers: Iterable[str] = ()) -> Pruned:
        """Delete the images not in `keep` and every layer no kept image names, nor `keep_layers`
        (base layers included: the next build makes them again)."""
        keep = set(keep)
        images = removed_bytes = 0
        used: set[str] = set(keep_layers)
        for record in sorted(self.images.glob("*.json")) if self.images.exists() else []:
            image_id = record.stem
            if image_id in keep:
                used.update((self.image(image_id) or {}).get("layer_ids", []))
            else:
                record.unlink(missing_ok=True)
                images += 1
        layers = 0
        for marker in sorted(self.layers.glob("*.done")) if self.layers.exists() else []:
            layer = marker.name.removesuffix(".done")
            if layer in used:
                continue
            lock = _try_lock(self.layers / f"{layer}.lock")
            if lock is None:
                continue  # being built right now
            try:
                marker.unlink(missing_ok=True)  # first: a half-deleted layer must not count as built
                removed_bytes += _size(self.path(layer))
                _remove(self.path(layer))
                layers += 1
            finally:
                os.close(lock)
            (self.layers / f"{layer}.lock").unlink(missing_ok=True)
        return Pruned(images, layers, removed_bytes)


def lock_file(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total
