"""Images, built on the worker as Debian root filesystems in layers (worker/rootfs/): one per
image id, reused by every container of that spec, and one build shared by everyone who needs it
at the same time.

An image is its base layer (a Debian suite, built once per worker and image dir), a layer with
another Python when the base lacks the version asked for, and one layer per step that changes
files; env and workdir steps only change what later steps and containers see. Layers are shared
between images that begin alike, and kept across restarts (worker/rootfs/layers.py). The stoker
runtime reaches the image's containers as read-only mounts (worker/rootfs/runtime.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import platform
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protos import container_env as cenv
from protos import stoker_pb2 as pb
from protos.image_steps import describe, step_key, steps_of
from worker import registry
from worker.rootfs import base
from worker.rootfs.enter import Enter
from worker.rootfs.inside import STANDARD_PATH, Inside
from worker.rootfs.layers import LayerStore, Pruned, layer_id
from worker.rootfs.process import ImageBuildError, Output
from worker.rootfs.python import DEFAULT_PYTHON_DIRS, install_python, version_matches
from worker.rootfs.runtime import CODE_PATH, DEPS_PATH, RUNTIME_PATHS, ensure_runtime, runtime_binds
from worker.rootfs.steps import run_step
from worker.sandbox.spec import Bind

__all__ = ["BuiltImage", "ImageBuildError", "ImageBuilder", "version_matches"]

log = logging.getLogger(__name__)

MODULES_PATH = "/root"  # add_local_python_source puts modules here; containers import from it, as on Modal

FetchBlob = Callable[[str], Awaitable[bytes]]
# What _layers_in_use files the default root's layer under: no prune removes it while the worker runs.
_DEFAULT_ROOT = "default-root"


@dataclass(frozen=True)
class BuiltImage:
    id: str
    layers: tuple[Path, ...]  # lowest first
    python: str  # inside the image
    env: Mapping[str, str] = field(default_factory=dict)  # its env steps, in order
    workdir: str = ""  # its last workdir step; empty: none
    runtime_paths: tuple[str, ...] = RUNTIME_PATHS  # inside: where the stoker runtime is mounted
    runtime_dir: Path = Path()  # on the worker: the runtime's dependencies for its Python

    def runtime_environment(self) -> dict[str, str]:
        """Where the container runtime imports its own gRPC, protobuf and stoker modules from, and
        what it falls back on (worker/runtime/isolation.py): its dependencies come after the
        image's own site-packages, so the app's pins (an old protobuf, its own FastAPI) win."""
        return {cenv.RUNTIME_PATH: os.pathsep.join(self.runtime_paths), cenv.RUNTIME_FALLBACK_PATH: DEPS_PATH}

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        """What a process running in this image sees on top of `base`: the image's own PATH,
        the stoker runtime importable, and the image's env. Only stoker's own code is on
        PYTHONPATH (`python -m worker.runtime` finds it there); its dependencies are never ahead
        of the image's."""
        pythonpath = [CODE_PATH, MODULES_PATH]
        return {
            "PATH": STANDARD_PATH,
            "HOME": "/root",
            "PYTHONPATH": os.pathsep.join(pythonpath),
            **self.runtime_environment(),
            **self.env,
        }

    def binds(self) -> list[Bind]:
        return runtime_binds(self.runtime_dir)

    def enter(self, own: Path, cwd: str, binds: Sequence[Bind] = ()) -> Enter:
        """How a container enters the image: its layers under `own/upper`, where what the
        container writes goes (and is deleted with `own`)."""
        for name in ("upper", "work", "root"):
            (own / name).mkdir(parents=True, exist_ok=True)
        return Enter(
            lower=[str(p) for p in self.layers],
            upper=str(own / "upper"),
            work=str(own / "work"),
            root=str(own / "root"),
            cwd=cwd,
            binds=[*self.binds(), *binds],
        )


@dataclass
class _Build:
    task: asyncio.Task[BuiltImage]
    listeners: list[Output] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # so far, for listeners who join late


class ImageBuilder:
    def __init__(
        self,
        root: Path,
        worker_id: str,
        cache_dir: str = "",
        timeout: float = 600.0,
        fetch_blob: FetchBlob | None = None,
        python_dirs: Sequence[Path] = DEFAULT_PYTHON_DIRS,
        debian_mirror: str = "",
        registry_config: registry.RegistryConfig | None = None,
    ) -> None:
        self.root = root.absolute()
        self.store = LayerStore(self.root)
        self.worker_id = worker_id
        self.cache_dir = cache_dir
        self.timeout = timeout
        self.fetch_blob = fetch_blob or _no_blobs
        self.python_dirs = python_dirs
        self.debian_mirror = debian_mirror
        self.registry = registry_config or registry.RegistryConfig(cache_dir=self.root / "registry-blobs")
        self._builds: dict[str, _Build] = {}
        self._layers_in_use: dict[str, set[str]] = {}  # by builds under way, which a prune keeps

    def built(self, image_id: str) -> BuiltImage | None:
        record = self.store.image(image_id)
        if record is None or any(self.store.meta(layer) is None for layer in record["layer_ids"]):
            return None
        runtime = Path(record["runtime_dir"])
        if not runtime.with_name(runtime.name + ".done").exists():
            return None
        return BuiltImage(
            id=image_id,
            layers=tuple(self.store.path(layer) for layer in record["layer_ids"]),
            python=record["python"],
            env=dict(record["env"]),
            workdir=record["workdir"],
            runtime_dir=runtime,
        )

    async def ensure(self, image_id: str, spec: pb.ImageSpec, output: Output) -> BuiltImage:
        """The built image, building it first if needed; `output` gets the build's lines."""
        image = self.built(image_id)
        if image is not None:
            output(f"image {image_id} is already built on worker {self.worker_id}: reusing it")
            return image
        build = self._builds.get(image_id)
        if build is None:
            build = _Build(asyncio.create_task(self._build(image_id, spec), name=f"build-{image_id}"))
            self._builds[image_id] = build
            build.task.add_done_callback(lambda _: self._builds.pop(image_id, None))
        else:
            output(f"image {image_id} is being built on worker {self.worker_id}: waiting for that build")
            for line in build.lines:
                output(line)
        build.listeners.append(output)
        try:
            return await asyncio.shield(build.task)
        finally:
            with contextlib.suppress(ValueError):
                build.listeners.remove(output)

    async def default_root(self, emit: Output) -> Path:
        """The root filesystem of containers with no image (Modal's default image, debian_slim()
        for this worker's Python): the base layer of that image, built once per image dir and
        kept by every prune while this worker runs (it stays in use under _DEFAULT_ROOT)."""
        suite = base.suite_for(platform.python_version())
        try:
            async with asyncio.timeout(self.timeout):
                layer, _ = await self._suite_base(_DEFAULT_ROOT, suite, emit)
        except TimeoutError:
            raise ImageBuildError(
                f"Debian {suite} was not built within {self.timeout:g} s (the worker's --image-build-timeout)"
            ) from None
        return self.store.path(layer)

    def _emit(self, image_id: str, line: str) -> None:
        build = self._builds.get(image_id)
        if build is None:
            return
        build.lines.append(line)
        for listener in list(build.listeners):
            listener(line)

    async def stop(self) -> None:
        for build in list(self._builds.values()):
            build.task.cancel()
        await asyncio.gather(*(b.task for b in list(self._builds.values())), return_exceptions=True)

    async def prune(self, keep: Sequence[str]) -> Pruned:
        """Delete the images not in `keep` (nor being built) and the layers no kept image uses."""
        in_use = set().union(*self._layers_in_use.values())  # layers of builds under way
        return await asyncio.to_thread(self.store.prune, set(keep) | set(self._builds), in_use)

    # ------------------------------------------------------------ the build itself

    async def _build(self, image_id: str, spec: pb.ImageSpec) -> BuiltImage:
        emit: Output = lambda line: self._emit(image_id, line)  # noqa: E731
        log.info("building image %s", image_id)
        self._layers_in_use[image_id] = set()
        try:
            async with asyncio.timeout(self.timeout):
                record = await self._layers(image_id, spec, emit)
        except TimeoutError:
            raise ImageBuildError(
                f"the build of image {image_id} did not finish within {self.timeout:g} s "
                "(the worker's --image-build-timeout)"
            ) from None
        finally:
            self._layers_in_use.pop(image_id, None)
        self.store.save_image(image_id, record)
        image = self.built(image_id)
        assert image is not None
        emit(f"image {image_id} built on worker {self.worker_id}")
        log.info("built image %s", image_id)
        return image

    async def _layers(self, image_id: str, spec: pb.ImageSpec, emit: Output) -> dict[str, Any]:
        """Build (or find) each layer of the image in turn; the image's record."""
        steps = steps_of(spec)
        registry = spec.base == "from_registry"
        wants_python = bool(spec.add_python) if registry else bool(spec.python_version)
        progress = _Progress(emit, 1 + wants_python + len(steps))
        if spec.base == "from_registry":
            progress.next("from_registry " + spec.registry_ref)
            chain = await self._registry_base(image_id, spec, progress, emit)
        else:
            chain = await self._debian_base(image_id, spec, progress, emit)
        for step in steps:
            progress.next(describe(step))
            top = layer_id(chain.top, step_key(step))
            if step.HasField("env"):  # no files change: later layers' ids still depend on it
                chain.inside.env.update(step.env.vars)
                chain.top = top
                continue
            current = chain.inside.copy()
            await self._layer(image_id, top, functools.partial(self._step, step, current, emit=emit), emit)
            chain.add(top, self.store.path(top))
            if step.HasField("workdir"):
                chain.inside.workdir = step.workdir
        minor = ".".join(chain.python_version.split(".")[:2])
        runtime = await ensure_runtime(self.root, minor, emit, self._uv_env())
        return {
            "layer_ids": chain.ids,
            "python": chain.inside.python,
            "python_version": chain.python_version,
            "env": chain.inside.env,
            "workdir": chain.inside.workdir if chain.inside.workdir != "/" else "",
            "runtime_dir": str(runtime),
        }

    async def _debian_base(self, image_id: str, spec: pb.ImageSpec, progress: _Progress, emit: Output) -> _Chain:
        """The suite's root filesystem, and a layer with another Python when it lacks the version."""
        suite = base.suite_for(spec.python_version)
        progress.next(f"debian_slim: Debian {suite} with Python, pip and CA certificates")
        top, meta = await self._suite_base(image_id, suite, emit)
        chain = _Chain([top], top, Inside(lower=[self.store.path(top)], python=meta["python"]), meta["python_version"])
        if not spec.python_version:
            return chain
        own = chain.python_version
        if version_matches(spec.python_version, _version(own)):
            progress.next(f"python {spec.python_version}: Debian {suite}'s own ({own})")
            return chain
        progress.next(f"python {spec.python_version}: not Debian {suite}'s ({own})")
        others = ", ".join(f"{s} {v}" for v, s in base.SUITES.items() if s != suite)
        await self._add_python(image_id, chain, spec.python_version, emit, f"Debian {suite} has {own}, {others}")
        return chain

    async def _suite_base(self, image_id: str, suite: str, emit: Output) -> tuple[str, dict[str, Any]]:
        """The base layer of `suite` (built, or found built), used by `image_id`: (its id, its marker)."""
        top = layer_id("", base.base_step(suite))
        build_base = functools.partial(base.build_base, suite, emit=emit, mirror=self.debian_mirror)
        return top, await self._layer(image_id, top, build_base, emit)

    async def _add_python(self, image_id: str, chain: _Chain, version: str, emit: Output, available: str) -> None:
        """A layer on `chain` with a worker's Python `version` (`available`: what the image has,
        for the error naming the versions there are), which becomes the image's interpreter."""
        top = layer_id(chain.top, f"python {version}")
        install = functools.partial(
            install_python,
            version,
            lower=list(chain.inside.lower),
            emit=emit,
            python_dirs=self.python_dirs,
            available=available,
        )
        meta = await self._layer(image_id, top, install, emit)
        chain.add(top, self.store.path(top))
        chain.inside.python, chain.python_version = meta["python"], meta["python_version"]

    async def _step(
        self, step: pb.ImageStep, inside: Inside, tree: Path, scratch: Path, *, emit: Output
    ) -> dict[str, Any]:
        await run_step(step, inside, tree, scratch, emit, self.fetch_blob, self.cache_dir)
        return {"step": describe(step)}

    async def _layer(
        self,
        image_id: str,
        layer: str,
        build: Callable[[Path, Path], Awaitable[dict[str, Any]]],
        emit: Output,
    ) -> dict[str, Any]:
        self._layers_in_use.setdefault(image_id, set()).add(layer)
        meta, built_now = await self.store.ensure(layer, build)
        if not built_now:
            emit(f"      reusing layer {layer}, built before on this worker")
        return meta

    async def _registry_base(self, image_id: str, spec: pb.ImageSpec, progress: _Progress, emit: Output) -> _Chain:
        """The pulled image as one layer (worker/registry/), and a layer with a worker's Python
        when `add_python` asks for one. The layer is named by the reference, as Modal builds a
        from_registry image once: a tag that moves later is not pulled again."""
        reference = spec.registry_ref
        top = layer_id("", f"from_registry {reference}")

        async def pull_into(tree: Path, scratch: Path) -> dict[str, Any]:
            pulled = scratch / "pulled"
            try:
                image = await registry.pull(reference, pulled, self.registry, emit)
            except registry.RegistryError as exc:
                raise ImageBuildError(f"from_registry({reference!r}): {exc}") from None
            await asyncio.to_thread(tree.rmdir)  # the store made it empty: the pulled tree takes its place
            await asyncio.to_thread(pulled.rename, tree)
            return {"env": image.env, "workdir": image.workdir or "/", "digest": image.digest, **_python_in(tree)}

        meta = await self._layer(image_id, top, pull_into, emit)
        inside = Inside(lower=[self.store.path(top)], env=dict(meta["env"]), workdir=meta["workdir"])
        chain = _Chain([top], top, inside, "")
        if spec.add_python:
            progress.next(f"add_python {spec.add_python}")
            await self._add_python(image_id, chain, spec.add_python, emit, f"{reference} is not given one")
            return chain
        if not meta.get("python"):
            raise ImageBuildError(
                f"from_registry({reference!r}): the image has no python3 (looked in /usr/local/bin and /usr/bin): "
                "pass add_python='3.11' (or another version this worker has)"
            )
        chain.inside.python, chain.python_version = meta["python"], meta["python_version"]
        return chain

    def _uv_env(self) -> dict[str, str]:
        # uv needs the operator's settings (UV_*, CA bundles, proxies) to reach the index, never
        # the worker's own STOKER_* settings, the cluster secret among them.
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV" and not k.startswith(cenv.PREFIX)}
        env.update(UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1", NO_COLOR="1")
        if self.cache_dir:
            env["UV_CACHE_DIR"] = self.cache_dir
        return env


@dataclass
class _Progress:
    """The build output's line per step: `[2/5] apt_install jq`."""

    emit: Output
    total: int
    number: int = 0

    def next(self, what: str) -> None:
        self.number += 1
        self.emit(f"[{self.number}/{self.total}] {what}")


@dataclass
class _Chain:
    """The layers so far (lowest first), the last step's id and what the next step sees."""

    ids: list[str]
    top: str
    inside: Inside
    python_version: str

    def add(self, layer: str, path: Path) -> None:
        self.ids.append(layer)
        self.top = layer
        self.inside.lower.append(path)


def _python_in(tree: Path) -> dict[str, str]:
    """The python3 a pulled root filesystem has, and its version from the name of the file it
    resolves to (python3.12): the image's own interpreter is not run on the worker."""
    for directory in ("usr/local/bin", "usr/bin"):
        link = tree / directory / "python3"
        if not (link.is_symlink() or link.is_file()):
            continue
        name = link.name
        seen = 0
        while link.is_symlink() and seen < 8:  # inside the tree, never the worker's own files
            target = os.readlink(link)
            link = (tree / target.lstrip("/")) if target.startswith("/") else link.parent / target
            name, seen = link.name, seen + 1
        version = name.removeprefix("python")
        if version.count(".") == 1 and all(part.isdigit() for part in version.split(".")):
            return {"python": f"/{directory}/python3", "python_version": version}
    return {}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


async def _no_blobs(digest: str) -> bytes:
    raise ImageBuildError(f"this worker cannot fetch image files ({digest})")


def blob_matches(digest: str, data: bytes) -> bool:
    return digest == "sha256:" + hashlib.sha256(data).hexdigest()
