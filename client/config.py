"""Where the client finds the cluster: STOKER_SCHEDULER / STOKER_TOKEN, else the config file
that `stoker up` wrote under $HOME."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


def config_path() -> Path:
    return Path(os.environ.get("HOME", str(Path.home()))) / ".stoker" / "config.json"


@dataclass(frozen=True)
class ClientConfig:
    scheduler: str
    token: str = ""
    from_file: bool = False


def load() -> ClientConfig | None:
    """The configured cluster, or None when nothing names one."""
    scheduler = os.environ.get("STOKER_SCHEDULER", "")
    token = os.environ.get("STOKER_TOKEN", "")
    if scheduler:
        return ClientConfig(scheduler=scheduler, token=token)
    path = config_path()
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not data.get("scheduler"):
        return None
    return ClientConfig(scheduler=data["scheduler"], token=token or data.get("token", ""), from_file=True)


def save(scheduler: str, token: str = "") -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"scheduler": scheduler, "token": token}, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return path
