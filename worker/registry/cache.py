"""Pulled blobs (manifests, configs, layers) kept by digest, so pulling an image again downloads only
what changed. A blob is there only once its content matched its digest (written aside, then renamed)."""

from __future__ import annotations

import re
from pathlib import Path

from worker.registry.errors import BadLayer

_SHA256 = re.compile(r"sha256:([0-9a-f]{64})")


class BlobCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, digest: str) -> Path:
        """Where blob `digest` lives; a digest that is not sha256:<64 hex> (a manifest may say
        anything, `sha256:../../x` included) is refused before it can name a path."""
        match = _SHA256.fullmatch(digest)
        if match is None:
            raise BadLayer(f"{digest!r:.100} is not a sha256 digest")
        return self.directory / "sha256" / match[1]

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def prepare(self) -> None:
        (self.directory / "sha256").mkdir(parents=True, exist_ok=True)
