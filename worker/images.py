"""Images, built on the worker as uv virtual environments: one per image id, reused by every
container of that spec, and one build shared by everyone who needs it at the same time.

An image lives in `<image dir>/<image id>/` (by default the image dir is `<work dir>/images`) and
counts as built once its marker file is there (a build cut short leaves no marker and is redone).
Interpreters are local only: uv runs with downloads disabled, so `python_version` must name the
worker's own Python or another one uv finds on the machine.

The stoker runtime reaches the image in two ways (worker/runtime/isolation.py). Its private paths
(cenv.RUNTIME_PATH), where its gRPC, protobuf and stoker's own modules are imported from, never
the image's: stoker's source and, for the worker's own Python, the worker's site-packages; for an
image of another Python, the runtime's requirements installed for that Python into the image's
own RUNTIME_DIR (`uv pip install --target`), never resolved together with the app's pins. And
the same paths as a shared fallback (cenv.RUNTIME_FALLBACK_PATH, and a `.pth` file that appends
them after the image's own site-packages), where FastAPI, pydantic and the other packages the
app and the runtime share are found when the image has none of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import importlib.metadata
import logging
import os
import shutil
import signal
import site
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import uv

from protos import container_env as cenv
from protos import stoker_pb2 as pb

log = logging.getLogger(__name__)

MARKER = ".stoker-built"
PTH_NAME = "_stoker_runtime.pth"
RUNTIME_DIR = "stoker-runtime"  # an image of another Python: the runtime's requirements, for that Python
ERROR_TAIL_LINES = 25
RUNTIME_PACKAGES = ("client", "protos", "worker")  # what a container imports of stoker

Output = Callable[[str], None]


class ImageBuildError(Exception):
    """The image could not be built; the message carries the installer's own error."""


@dataclass(frozen=True)
class BuiltImage:
    id: str
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def same_python(self) -> bool:
        """Whether the image's Python is the worker's version (then the worker's packages load in it)."""
        return (self.root / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}").is_dir()

    @property
    def runtime_paths(self) -> tuple[str, ...]:
        """Where the container runtime imports its own gRPC, protobuf and stoker modules from."""
        own = self.root / RUNTIME_DIR  # first: stoker's own source may sit in the worker's site-packages
        return tuple(([str(own)] if own.is_dir() else []) + runtime_paths(self.same_python))

    def runtime_environment(self) -> dict[str, str]:
        """What tells the container runtime its private and its fallback paths (both the same here)."""
        paths = os.pathsep.join(self.runtime_paths)
        return {cenv.RUNTIME_PATH: paths, cenv.RUNTIME_FALLBACK_PATH: paths}

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        """What a process running in this image sees, as an activated venv would set it, and where
        the container runtime finds itself."""
        path = base.get("PATH", os.defpath)
        return {
            "VIRTUAL_ENV": str(self.root),
            "PATH": f"{self.root / 'bin'}{os.pathsep}{path}",
            **self.runtime_environment(),
        }


@dataclass
class _Build:
    task: asyncio.Task[BuiltImage]
    listeners: list[Output] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # so far, for listeners who join late


class ImageBuilder:
    def __init__(self, root: Path, worker_id: str, cache_dir: str = "", timeout: float = 600.0) -> None:
        self.root = root.absolute()  # containers run elsewhere: VIRTUAL_ENV must not be relative
        self.worker_id = worker_id
        self.cache_dir = cache_dir
        self.timeout = timeout
        self._builds: dict[str, _Build] = {}

    def built(self, image_id: str) -> BuiltImage | None:
        image = BuiltImage(image_id, self.root / image_id)
        return image if (image.root / MARKER).exists() else None

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

    # ------------------------------------------------------------ the build itself

    async def _build(self, image_id: str, spec: pb.ImageSpec) -> BuiltImage:
        self.root.mkdir(parents=True, exist_ok=True)
        # Workers on one machine may share an image directory (--image-dir): one builds, the
        # others wait on the lock and find it built.
        lock = await asyncio.to_thread(_lock, self.root / f"{image_id}.lock")
        try:
            return await self._build_locked(image_id, spec)
        finally:
            os.close(lock)

    async def _build_locked(self, image_id: str, spec: pb.ImageSpec) -> BuiltImage:
        emit: Output = lambda line: self._emit(image_id, line)  # noqa: E731
        if (built := self.built(image_id)) is not None:
            emit(f"image {image_id} was built by another worker sharing {self.root}: reusing it")
            return built
        image = BuiltImage(image_id, self.root / image_id)
        shutil.rmtree(image.root, ignore_errors=True)  # what a cut-short build left
        log.info("building image %s", image_id)
        try:
            async with asyncio.timeout(self.timeout):
                await self._steps(image, spec, emit)
        except TimeoutError:
            shutil.rmtree(image.root, ignore_errors=True)
            raise ImageBuildError(
                f"the build of image {image_id} did not finish within {self.timeout:g} s "
                "(the worker's --image-build-timeout)"
            ) from None
        except BaseException:
            shutil.rmtree(image.root, ignore_errors=True)
            raise
        (image.root / MARKER).write_text(image_id)
        emit(f"image {image_id} built on worker {self.worker_id}")
        log.info("built image %s", image_id)
        return image

    async def _steps(self, image: BuiltImage, spec: pb.ImageSpec, emit: Output) -> None:
        python, same_python = await self._interpreter(spec.python_version)
        await self._run([uv.find_uv_bin(), "venv", "--python", python, str(image.root)], emit)
        packages = list(spec.pip_packages)
        if not same_python:
            # The worker's compiled packages (grpcio…) do not load in another Python: the runtime's
            # own requirements, for the image's Python, in a directory of their own, so the app's
            # pins (an old protobuf) never meet the runtime's in one resolution.
            requirements = _runtime_requirements()
            emit(f"$ uv pip install --target {RUNTIME_DIR} " + " ".join(requirements))
            target = str(image.root / RUNTIME_DIR)
            await self._run(
                [uv.find_uv_bin(), "pip", "install", "--python", str(image.python), "--target", target, *requirements],
                emit,
            )
        _write_runtime_pth(image)
        if packages:
            emit("$ uv pip install " + " ".join(packages))
            await self._run([uv.find_uv_bin(), "pip", "install", "--python", str(image.python), *packages], emit)
        env = {**os.environ, **image.environment(dict(os.environ)), **spec.env}
        for command in spec.commands:
            emit(f"$ {command}")
            await self._run(["/bin/sh", "-c", command], emit, env=env, cwd=image.root)

    async def _interpreter(self, version: str) -> tuple[str, bool]:
        """The local interpreter for `version`: the worker's own when it fits, else what uv finds;
        and whether it is the worker's Python version (then the worker's packages load in it)."""
        if version_matches(version, sys.version_info[:3]):
            return sys.executable, True
        try:
            found = await self._run([uv.find_uv_bin(), "python", "find", version], None)
        except ImageBuildError:
            found = ""
        if not found:
            mine = ".".join(str(p) for p in sys.version_info[:3])
            raise ImageBuildError(
                f"Python {version} is not installed on worker {self.worker_id}, and stoker never downloads "
                f"interpreters: use python_version={mine[: mine.rfind('.')]!r} (the worker's own), "
                f"or install Python {version} on the worker"
            )
        python = found.splitlines()[-1].strip()
        probe = "import sys; print(sys.version_info[:2])"
        version_found = await self._run([python, "-c", probe], None)
        return python, version_found.strip() == str(sys.version_info[:2])

    def _uv_env(self) -> dict[str, str]:
        # uv and the build backends it runs need the operator's settings (UV_*, CA bundles,
        # proxies) to reach the index, but .run_commands() and a package's build scripts are the
        # app's code: never the worker's own STOKER_* settings, the cluster secret among them.
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV" and not k.startswith(cenv.PREFIX)}
        # Bytecode is compiled at build time: containers must not compile their imports on every
        # cold start (and may not write .pyc files at all, under PYTHONDONTWRITEBYTECODE).
        env.update(UV_PYTHON_DOWNLOADS="never", UV_COMPILE_BYTECODE="1", UV_NO_PROGRESS="1", NO_COLOR="1")
        if self.cache_dir:
            env["UV_CACHE_DIR"] = self.cache_dir
        return env

    async def _run(
        self,
        argv: list[str],
        emit: Output | None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> str:
        """Run one build step, passing its output on line by line to `emit` (None: a probe, kept
        quiet); its output, or ImageBuildError ending with the output's last lines."""
        run_env = {**self._uv_env(), **(env or {})}
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=run_env,
            cwd=cwd,
            start_new_session=True,  # a timeout or cancel stops the whole step
        )
        assert process.stdout is not None
        lines: list[str] = []
        try:
            async for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip()
                lines.append(line)
                if emit is not None:
                    emit(line)
            code = await process.wait()
        except BaseException:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            raise
        if code != 0:
            step = " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))
            raise ImageBuildError(f"`{step}` failed with exit code {code}:\n" + "\n".join(lines[-ERROR_TAIL_LINES:]))
        return "\n".join(lines)


def version_matches(requested: str, actual: tuple[int, int, int]) -> bool:
    """Whether an interpreter of version `actual` satisfies `requested` ("3.11" or "3.11.7")."""
    if not requested:
        return True
    return tuple(int(p) for p in requested.split(".")) == actual[: len(requested.split("."))]


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def runtime_paths(same_python: bool) -> list[str]:
    """Where the stoker runtime is imported from in this process; with the worker's own Python,
    its site-packages too (grpc, FastAPI…), which are of no use to another Python."""
    paths: list[str] = []
    for name in RUNTIME_PACKAGES:
        module = importlib.import_module(name)
        paths.append(str(Path(next(iter(module.__path__))).resolve().parent))
    if same_python:
        paths.extend(site.getsitepackages())
    return list(dict.fromkeys(paths))


def _write_runtime_pth(image: BuiltImage) -> None:
    # A .pth line appends its directory to sys.path after the venv's own site-packages: the
    # fallback for every process of the image, the app's own subprocesses too.
    for site_packages in (image.root / "lib").glob("python*/site-packages"):
        (site_packages / PTH_NAME).write_text("\n".join(image.runtime_paths) + "\n")


def _runtime_requirements() -> list[str]:
    requires = importlib.metadata.requires("stoker") or []
    return [r for r in requires if "extra ==" not in r]
