"""Secrets: named sets of environment variables given to containers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from client import modal_names


@dataclass(frozen=True)
class Secret:
    """A reference to a secret stored on the cluster, or an inline set of variables."""

    name: str = ""
    values: tuple[tuple[str, str], ...] = ()

    if not TYPE_CHECKING:  # at runtime only, so that mypy still checks attribute names

        def __getattr__(self, name: str) -> Any:
            modal_names.missing_attribute(self, "Secret", name)

    @staticmethod
    def from_name(name: str, **_: object) -> Secret:
        return Secret(name=name)

    @staticmethod
    def from_dict(env_dict: dict[str, str | None]) -> Secret:
        return Secret(values=tuple(sorted((k, v) for k, v in env_dict.items() if v is not None)))
