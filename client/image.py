"""Container images, as the SDK records them: a base and its steps, in order. Workers build each
step as a layer of a Debian root filesystem (worker/rootfs/).

Files an image adds (add_local_*, requirements files, pyproject files) are read here, on the
client, when the app is described for a deploy: their contents travel with the deploy, and a
changed file makes a different image. Relative paths are taken from the working directory, as
Modal does.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import shlex
import tarfile
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from client import modal_names
from client.exceptions import InvalidError
from protos import stoker_pb2 as pb

Ignore = Sequence[str] | Callable[[Path], bool]

# The tars add_local_* steps made in this process, by digest: the deploy carries them
# (client/appfile.py puts those its specs name into AppDefinition.image_blobs).
_blobs: dict[str, bytes] = {}


def local_blob(digest: str) -> bytes:
    return _blobs[digest]


def _not_supported(method: str, what: str) -> InvalidError:
    return InvalidError(f"Image.{method}({what}) is not supported yet by stoker")


def _refuse_unsupported(method: str, **options: Any) -> None:
    """The build options we cannot honour yet: refused by name rather than ignored."""
    for name, value in options.items():
        if value:
            raise _not_supported(method, f"{name}=...")


def _flatten(items: Sequence[str | list[str]], method: str) -> list[str]:
    flat: list[str] = []
    for item in items:
        for value in [item] if isinstance(item, str) else item:
            if not isinstance(value, str):
                raise InvalidError(f"Image.{method}() takes strings, not {type(value).__name__}")
            flat.append(value)
    return flat


def _local_path(path: str | Path) -> Path:
    return Path(os.path.expanduser(path)).absolute()


def _read_local(path: str | Path, what: str) -> Path:
    local = _local_path(path)
    if not local.exists():
        raise InvalidError(f"{what}: local path {str(path)!r} does not exist ({local})")
    return local


@dataclass(frozen=True)
class _Step:
    """A step known whole when it is recorded; kept serialized (deterministically: env maps in
    key order), so that equal recipes make equal, hashable images."""

    data: bytes

    @staticmethod
    def of(step: pb.ImageStep) -> _Step:
        return _Step(step.SerializeToString(deterministic=True))

    @property
    def kind(self) -> str | None:
        return self.to_proto().WhichOneof("kind")

    def to_proto(self) -> pb.ImageStep:
        return pb.ImageStep.FromString(self.data)


@dataclass(frozen=True)
class _LocalFiles:
    """An add_local_* step: read when the spec is made (at deploy), not when it is recorded."""

    method: str
    local: Path
    remote: str  # where `local` lands: the file's own path, or the directory's
    ignore: Ignore | None
    copy: bool
    python_only: bool = False  # add_local_python_source: only .py files, as Modal's default

    def to_proto(self) -> pb.ImageStep:
        data = self._tar()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        _blobs[digest] = data
        description = f"{self.method} {self.local} -> {self.remote}"
        return pb.ImageStep(add_files=pb.ImageFiles(digest=digest, description=description))

    def _files(self) -> Iterator[tuple[Path, str]]:
        if not self.local.exists():
            raise InvalidError(f"Image.{self.method}(): local path {str(self.local)!r} does not exist")
        if self.method == "add_local_file" and not self.local.is_file():
            raise InvalidError(f"Image.add_local_file(): {str(self.local)!r} is not a file; use add_local_dir()")
        if self.method == "add_local_dir" and not self.local.is_dir():
            raise InvalidError(f"Image.add_local_dir(): {str(self.local)!r} is not a directory; use add_local_file()")
        if self.local.is_file():
            yield self.local, self.remote
            return
        for path in sorted(self.local.rglob("*")):
            relative = path.relative_to(self.local)
            if "__pycache__" in relative.parts or self._ignored(relative):
                continue
            if self.python_only and (path.is_file() and path.suffix != ".py"):
                continue
            yield path, str(PurePosixPath(self.remote) / relative.as_posix())

    def _ignored(self, relative: Path) -> bool:
        if self.ignore is None:
            return False
        if callable(self.ignore):
            return bool(self.ignore(relative))
        posix = relative.as_posix()
        for pattern in self.ignore:
            if pattern.startswith("!"):
                raise _not_supported(self.method, f"ignore pattern {pattern!r} (negation)")
            bare = pattern.removeprefix("**/").rstrip("/")
            prefixes = [PurePosixPath(*relative.parts[: i + 1]).as_posix() for i in range(len(relative.parts))]
            if any(fnmatch(p, bare) or fnmatch(p, pattern) for p in prefixes) or fnmatch(posix, pattern):
                return True
        return False

    def _tar(self) -> bytes:
        """A tar of the files at their image paths (relative to /), the same bytes for the same
        files: sorted, owned by root, no timestamps."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path, remote in self._files():
                info = tar.gettarinfo(str(path), arcname=remote.lstrip("/"))
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                info.pax_headers = {}
                if info.isreg():
                    with path.open("rb") as f:
                        tar.addfile(info, f)
                elif info.isdir() or info.issym():
                    tar.addfile(info)
        return buffer.getvalue()


@dataclass(frozen=True)
class _PythonSource:
    """add_local_python_source(module): found when the spec is made, as its files are read then."""

    module: str
    ignore: Ignore | None
    copy: bool

    def to_proto(self) -> pb.ImageStep:
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):
            spec = None
        if spec is None or spec.origin in (None, "built-in", "frozen"):
            raise InvalidError(f"Image.add_local_python_source(): no local Python module named {self.module!r}")
        if spec.submodule_search_locations:
            local, remote = Path(next(iter(spec.submodule_search_locations))), f"/root/{self.module}"
        else:
            assert spec.origin is not None
            local = Path(spec.origin)
            remote = f"/root/{local.name}"
        files = _LocalFiles("add_local_python_source", local, remote, self.ignore, self.copy, python_only=True)
        return files.to_proto()


@dataclass(frozen=True)
class _PipFiles:
    """A pip install of what files list (requirements files, a pyproject's dependencies), read
    when the spec is made."""

    method: str  # pip_install_from_requirements | pip_install_from_pyproject | uv_pip_install
    paths: tuple[str, ...]
    options: bytes  # a serialized ImagePipInstall: the packages and options given besides
    optional: tuple[str, ...] = ()  # a pyproject's optional dependency groups

    def to_proto(self) -> pb.ImageStep:
        pip = pb.ImagePipInstall.FromString(self.options)
        if self.method == "pip_install_from_pyproject":
            pip.packages.extend(_pyproject_dependencies(self.paths[0], self.optional))
        else:
            pip.requirements_txt = "".join(_read_text(path, self.method) + "\n" for path in self.paths)
        if self.method == "uv_pip_install":
            return pb.ImageStep(uv_pip_install=pip)
        return pb.ImageStep(pip_install=pip)


StepLike = _Step | _LocalFiles | _PythonSource | _PipFiles


@dataclass(frozen=True)
class Image:
    """A container image: a base (a Debian root filesystem or a registry image) and its steps."""

    base: str = "debian_slim"
    python_version: str = ""
    registry_ref: str = ""
    add_python: str = ""
    steps: tuple[StepLike, ...] = ()

    if not TYPE_CHECKING:  # at runtime only, so that mypy still checks attribute names

        def __getattr__(self, name: str) -> Any:
            modal_names.missing_attribute(self, "Image", name)

    # ------------------------------------------------------------ bases

    @staticmethod
    def debian_slim(python_version: str | None = None, force_build: bool = False) -> Image:
        _refuse_unsupported("debian_slim", force_build=force_build)
        return Image(base="debian_slim", python_version=python_version or "")

    @staticmethod
    def from_registry(
        tag: str,
        secret: object = None,
        *,
        setup_dockerfile_commands: Sequence[str] = (),
        force_build: bool = False,
        add_python: str | None = None,
        **kwargs: Any,
    ) -> Image:
        _refuse_unsupported(
            "from_registry", secret=secret, setup_dockerfile_commands=setup_dockerfile_commands, force_build=force_build
        )
        if kwargs:
            raise _not_supported("from_registry", ", ".join(f"{k}=..." for k in kwargs))
        if not isinstance(tag, str) or not tag.strip():
            raise InvalidError("Image.from_registry() needs an image reference, like 'python:3.12-slim'")
        return Image(base="from_registry", registry_ref=tag, add_python=add_python or "")

    # ------------------------------------------------------------ build steps

    def _then(self, method: str, step: StepLike) -> Image:
        if isinstance(step, _Step | _PipFiles):
            mounted = [s for s in self.steps if isinstance(s, _LocalFiles | _PythonSource) and not s.copy]
            if mounted and (isinstance(step, _PipFiles) or step.kind not in ("env", "workdir")):
                raise InvalidError(
                    f"Image.{method}() comes after an add_local_* step with copy=False: run "
                    "image.add_local_* last in the image, or pass copy=True"
                )
        return replace(self, steps=(*self.steps, step))

    def apt_install(
        self, *packages: str | list[str], force_build: bool = False, secrets: Sequence[object] = (), gpu: object = None
    ) -> Image:
        _refuse_unsupported("apt_install", force_build=force_build, secrets=secrets, gpu=gpu)
        names = _flatten(packages, "apt_install")
        if not names:
            return self
        return self._then("apt_install", _Step.of(pb.ImageStep(apt_install=pb.ImagePackages(packages=names))))

    def pip_install(
        self,
        *packages: str | list[str],
        find_links: str | None = None,
        index_url: str | None = None,
        extra_index_url: str | None = None,
        pre: bool = False,
        extra_options: str = "",
        force_build: bool = False,
        secrets: Sequence[object] = (),
        gpu: object = None,
    ) -> Image:
        _refuse_unsupported("pip_install", force_build=force_build, secrets=secrets, gpu=gpu)
        names = _flatten(packages, "pip_install")
        if not names:
            return self
        pip = _pip(names, find_links, index_url, extra_index_url, pre, extra_options)
        return self._then("pip_install", _Step.of(pb.ImageStep(pip_install=pip)))

    def uv_pip_install(
        self,
        *packages: str | list[str],
        requirements: Sequence[str] | None = None,
        find_links: str | None = None,
        index_url: str | None = None,
        extra_index_url: str | None = None,
        pre: bool = False,
        extra_options: str = "",
        force_build: bool = False,
        uv_version: str | None = None,
        secrets: Sequence[object] = (),
        gpu: object = None,
    ) -> Image:
        _refuse_unsupported("uv_pip_install", force_build=force_build, uv_version=uv_version, secrets=secrets, gpu=gpu)
        names = _flatten(packages, "uv_pip_install")
        if not names and not requirements:
            return self
        pip = _pip(names, find_links, index_url, extra_index_url, pre, extra_options)
        if not requirements:
            return self._then("uv_pip_install", _Step.of(pb.ImageStep(uv_pip_install=pip)))
        step = _PipFiles("uv_pip_install", tuple(map(str, requirements)), pip.SerializeToString(deterministic=True))
        return self._then("uv_pip_install", step)

    def pip_install_from_requirements(
        self,
        requirements_txt: str,
        find_links: str | None = None,
        *,
        index_url: str | None = None,
        extra_index_url: str | None = None,
        pre: bool = False,
        extra_options: str = "",
        force_build: bool = False,
        secrets: Sequence[object] = (),
        gpu: object = None,
    ) -> Image:
        _refuse_unsupported("pip_install_from_requirements", force_build=force_build, secrets=secrets, gpu=gpu)
        pip = _pip([], find_links, index_url, extra_index_url, pre, extra_options)
        options = pip.SerializeToString(deterministic=True)
        step = _PipFiles("pip_install_from_requirements", (str(requirements_txt),), options)
        return self._then("pip_install_from_requirements", step)

    def pip_install_from_pyproject(
        self,
        pyproject_toml: str,
        optional_dependencies: Sequence[str] = (),
        *,
        find_links: str | None = None,
        index_url: str | None = None,
        extra_index_url: str | None = None,
        pre: bool = False,
        extra_options: str = "",
        force_build: bool = False,
        secrets: Sequence[object] = (),
        gpu: object = None,
    ) -> Image:
        _refuse_unsupported("pip_install_from_pyproject", force_build=force_build, secrets=secrets, gpu=gpu)
        pip = _pip([], find_links, index_url, extra_index_url, pre, extra_options)
        options = pip.SerializeToString(deterministic=True)
        step = _PipFiles("pip_install_from_pyproject", (str(pyproject_toml),), options, tuple(optional_dependencies))
        return self._then("pip_install_from_pyproject", step)

    def run_commands(
        self, *commands: str | list[str], secrets: Sequence[object] = (), gpu: object = None, force_build: bool = False
    ) -> Image:
        _refuse_unsupported("run_commands", force_build=force_build, secrets=secrets, gpu=gpu)
        flat = _flatten(commands, "run_commands")
        if not flat:
            return self
        return self._then("run_commands", _Step.of(pb.ImageStep(run_commands=pb.ImageCommands(commands=flat))))

    def env(self, vars: dict[str, str]) -> Image:
        for name, value in vars.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise InvalidError(f"Image.env() takes strings: {name!r}={value!r}")
        return self._then("env", _Step.of(pb.ImageStep(env=pb.ImageEnv(vars=vars))))

    def workdir(self, path: str | PurePosixPath) -> Image:
        if not PurePosixPath(path).is_absolute():
            raise InvalidError(f"Image.workdir({str(path)!r}): give an absolute path")
        return self._then("workdir", _Step.of(pb.ImageStep(workdir=str(path))))

    # ------------------------------------------------------------ local files

    def add_local_file(self, local_path: str | Path, remote_path: str, *, copy: bool = False) -> Image:
        local = _local_path(local_path)
        remote = str(remote_path)
        if remote.endswith("/"):
            remote += local.name
        if not PurePosixPath(remote).is_absolute():
            raise InvalidError(f"Image.add_local_file(): remote_path {remote_path!r} must be an absolute path")
        return self._then("add_local_file", _LocalFiles("add_local_file", local, remote, None, copy))

    def add_local_dir(
        self, local_path: str | Path, remote_path: str, *, copy: bool = False, ignore: Ignore = ()
    ) -> Image:
        local = _local_path(local_path)
        if not PurePosixPath(remote_path).is_absolute():
            raise InvalidError(f"Image.add_local_dir(): remote_path {remote_path!r} must be an absolute path")
        step = _LocalFiles("add_local_dir", local, str(remote_path), ignore, copy)
        return self._then("add_local_dir", step)

    def add_local_python_source(self, *modules: str, copy: bool = False, ignore: Ignore | None = None) -> Image:
        """Each module (a package's directory, or a module's file) lands in /root, which containers
        of images have on their import path, as on Modal."""
        image = self
        for module in modules:
            if not module.isidentifier():
                raise InvalidError(f"Image.add_local_python_source({module!r}): name a top-level module or package")
            image = image._then("add_local_python_source", _PythonSource(module, ignore, copy))
        return image

    # ------------------------------------------------------------ the spec

    def to_proto(self) -> pb.ImageSpec:
        return pb.ImageSpec(
            base=self.base,
            python_version=self.python_version,
            registry_ref=self.registry_ref,
            add_python=self.add_python,
            steps=[step.to_proto() for step in self.steps],
        )


def _pip(
    packages: list[str],
    find_links: str | None,
    index_url: str | None,
    extra_index_url: str | None,
    pre: bool,
    extra_options: str,
) -> pb.ImagePipInstall:
    try:
        shlex.split(extra_options)
    except ValueError as exc:
        raise InvalidError(f"extra_options {extra_options!r} does not split into options: {exc}") from None
    return pb.ImagePipInstall(
        packages=packages,
        find_links=find_links or "",
        index_url=index_url or "",
        extra_index_url=extra_index_url or "",
        pre=pre,
        extra_options=extra_options,
    )


def _read_text(path: str, method: str) -> str:
    local = _read_local(path, f"Image.{method}()")
    try:
        return local.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidError(f"Image.{method}(): cannot read {path!r}: {exc}") from None


def _pyproject_dependencies(path: str, optional_dependencies: Sequence[str]) -> list[str]:
    text = _read_text(path, "pip_install_from_pyproject")
    try:
        project = tomllib.loads(text).get("project", {})
    except tomllib.TOMLDecodeError as exc:
        raise InvalidError(f"Image.pip_install_from_pyproject(): {path} is not valid TOML: {exc}") from None
    packages = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for group in optional_dependencies:
        if group not in optional:
            raise InvalidError(f"Image.pip_install_from_pyproject(): {path} has no optional dependencies {group!r}")
        packages += optional[group]
    return packages
