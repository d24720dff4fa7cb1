"""The scheduler's state dir is private to its user: the dir 0700, the files that hold secrets
(or the database, whose secrets the key beside it opens) 0600. One made by an older stoker, or by
hand with the umask's modes, is tightened at startup, saying so."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

from scheduler.secret_box import KEY_FILE

log = logging.getLogger(__name__)

DATABASE = "stoker.db"
# SQLite's companions of the database hold its pages too.
PRIVATE_FILES = (
    DATABASE,
    f"{DATABASE}-wal",
    f"{DATABASE}-shm",
    f"{DATABASE}-journal",
    KEY_FILE,
    "workspace-token",
    "cluster-secret",
)


def make_private(state_dir: Path) -> None:
    """Create `state_dir` (0700), or tighten it and the files of PRIVATE_FILES it holds."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(state_dir, 0o700)
    for name in PRIVATE_FILES:
        path = state_dir / name
        if path.exists():
            _tighten(path, 0o600)


def _tighten(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & 0o077:  # group or others may read (or enter) it
        path.chmod(mode)
        log.warning("%s was mode %o, open to other users; made it %o", path, current, mode)
