"""Container images. Recorded here; the worker builds them as virtual environments."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from client import modal_names
from protos import stoker_pb2 as pb


@dataclass(frozen=True)
class Image:
    """A container image: a base, a Python version and the packages installed on top."""

    base: str = "debian_slim"
    python_version: str = ""
    pip_packages: tuple[str, ...] = ()
    env_vars: tuple[tuple[str, str], ...] = ()
    commands: tuple[str, ...] = ()

    if not TYPE_CHECKING:  # at runtime only, so that mypy still checks attribute names

        def __getattr__(self, name: str) -> Any:
            modal_names.missing_attribute(self, "Image", name)

    @staticmethod
    def debian_slim(python_version: str | None = None) -> Image:
        return Image(base="debian_slim", python_version=python_version or "")

    def pip_install(self, *packages: str | list[str], **_: object) -> Image:
        flat: list[str] = []
        for p in packages:
            flat.extend([p] if isinstance(p, str) else p)
        return replace(self, pip_packages=self.pip_packages + tuple(flat))

    def env(self, vars: dict[str, str]) -> Image:
        return replace(self, env_vars=self.env_vars + tuple(sorted(vars.items())))

    def run_commands(self, *commands: str | list[str], **_: object) -> Image:
        flat: list[str] = []
        for c in commands:
            flat.extend([c] if isinstance(c, str) else c)
        return replace(self, commands=self.commands + tuple(flat))

    def to_proto(self) -> pb.ImageSpec:
        return pb.ImageSpec(
            base=self.base,
            python_version=self.python_version,
            pip_packages=list(self.pip_packages),
            env=dict(self.env_vars),
            commands=list(self.commands),
        )
