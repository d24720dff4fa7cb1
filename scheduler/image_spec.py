"""What identifies an image and what a valid spec is: the scheduler checks a deploy's specs and
names the image each container needs by its id (workers build one image per id)."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Iterable
from pathlib import PurePosixPath

from protos import stoker_pb2 as pb
from protos.image_steps import step_key, steps_of

BASES = frozenset({"debian_slim", "from_registry"})
_PYTHON_VERSION = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")
_APT_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?([=/][A-Za-z0-9.+:~_-]+)?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class ImageSpecError(ValueError):
    """The image spec cannot be built, and why."""


def image_id(spec: pb.ImageSpec) -> str:
    """A stable name for the image `spec` describes: its base and every step, in order (the
    files an add_local_* step adds by their digest, so that changed files make a new image)."""
    canonical = json.dumps(
        {
            "base": spec.base or "debian_slim",
            "python": spec.python_version,
            "registry": spec.registry_ref,
            "add_python": spec.add_python,
            "steps": [step_key(step) for step in steps_of(spec)],
        },
        separators=(",", ":"),
    )
    return "im-" + hashlib.sha256(canonical.encode()).hexdigest()[:20]


def blob_digests(specs: Iterable[pb.ImageSpec]) -> set[str]:
    """The local-file tars these images add."""
    return {s.add_files.digest for spec in specs for s in spec.steps if s.HasField("add_files")}


def check_python_version(version: str) -> None:
    """Empty (the base's own Python), "3.12" or "3.12.1"; anything else is refused."""
    if version and not _PYTHON_VERSION.match(version):
        raise ImageSpecError(f"python_version {version!r} is not a Python version: use a form like '3.11' or '3.11.7'")


def check_spec(spec: pb.ImageSpec, blobs: set[str] | None = None) -> None:
    """Refuse what no worker could build; `blobs`: the digests of the local-file tars the deploy
    carries or the scheduler keeps (None: not checked)."""
    if spec.base and spec.base not in BASES:
        raise ImageSpecError(f"image base {spec.base!r} is not supported: use Image.debian_slim()")
    if spec.base == "from_registry":
        if not spec.registry_ref.strip() or any(c.isspace() for c in spec.registry_ref):
            raise ImageSpecError(f"from_registry({spec.registry_ref!r}): not an image reference")
        check_python_version(spec.add_python)
    elif spec.registry_ref or spec.add_python:
        raise ImageSpecError("registry_ref and add_python belong to Image.from_registry() images")
    check_python_version(spec.python_version)
    for step in steps_of(spec):
        _check_step(step, blobs)


def _check_step(step: pb.ImageStep, blobs: set[str] | None) -> None:
    kind = step.WhichOneof("kind")
    if kind is None:
        raise ImageSpecError("an image step of no kind (a newer client than this scheduler?)")
    if kind == "apt_install":
        for package in step.apt_install.packages:
            if not _APT_PACKAGE.match(package):
                raise ImageSpecError(f"apt_install({package!r}): not a Debian package name")
    elif kind in ("pip_install", "uv_pip_install"):
        pip = getattr(step, kind)
        for package in pip.packages:
            if not package.strip() or package.lstrip().startswith("-"):
                raise ImageSpecError(f"{kind}({package!r}): give package names or requirement specifiers, not options")
        try:
            shlex.split(pip.extra_options)
        except ValueError as exc:
            raise ImageSpecError(f"{kind}(extra_options={pip.extra_options!r}): {exc}") from None
    elif kind == "env":
        for name in step.env.vars:
            if not name or "=" in name or "\0" in name:
                raise ImageSpecError(f"env({name!r}): not a valid environment variable name")
    elif kind == "workdir":
        if not PurePosixPath(step.workdir).is_absolute() or "\0" in step.workdir:
            raise ImageSpecError(f"workdir({step.workdir!r}): give an absolute path")
    elif kind == "add_files":
        digest = step.add_files.digest
        if not _DIGEST.match(digest):
            raise ImageSpecError(f"add_local_*: {digest!r} is not a sha256 digest")
        if blobs is not None and digest not in blobs:
            raise ImageSpecError(f"{step.add_files.description or 'add_local_*'}: the deploy does not carry its files")
