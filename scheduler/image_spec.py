"""What identifies an image and what a valid spec is: the scheduler checks a deploy's specs and
names the image each container needs by its id (workers build one image per id)."""

from __future__ import annotations

import hashlib
import json
import re

from protos import stoker_pb2 as pb

BASES = frozenset({"debian_slim"})
_PYTHON_VERSION = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")


class ImageSpecError(ValueError):
    """The image spec cannot be built, and why."""


def image_id(spec: pb.ImageSpec) -> str:
    """A stable name for the environment `spec` describes.

    Packages and commands keep their order (a later `pip_install` may pin over an earlier one, a
    command may need the one before); env vars are a mapping, so their order does not count.
    """
    canonical = json.dumps(
        {
            "base": spec.base or "debian_slim",
            "python": spec.python_version,
            "pip": list(spec.pip_packages),
            "env": sorted(spec.env.items()),
            "commands": list(spec.commands),
        },
        separators=(",", ":"),
    )
    return "im-" + hashlib.sha256(canonical.encode()).hexdigest()[:20]


def check_python_version(version: str) -> None:
    """Empty (the worker's own Python), "3.12" or "3.12.1"; anything else is refused."""
    if version and not _PYTHON_VERSION.match(version):
        raise ImageSpecError(f"python_version {version!r} is not a Python version: use a form like '3.11' or '3.11.7'")


def check_spec(spec: pb.ImageSpec) -> None:
    if spec.base and spec.base not in BASES:
        raise ImageSpecError(f"image base {spec.base!r} is not supported: use Image.debian_slim()")
    check_python_version(spec.python_version)
    for package in spec.pip_packages:
        if not package.strip() or package.lstrip().startswith("-"):
            raise ImageSpecError(f"pip_install({package!r}): give package names or requirement specifiers, not options")
    for name in spec.env:
        if not name or "=" in name or "\0" in name:
            raise ImageSpecError(f"env({name!r}): not a valid environment variable name")
