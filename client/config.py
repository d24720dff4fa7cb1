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
    if scheduler and token:
        return ClientConfig(scheduler=scheduler, token=token)  # no file to read (every call in a container)
    data = _read_file()
    token = token or data.get("token", "")
    if scheduler:
        return ClientConfig(scheduler=scheduler, token=token)
    if not data.get("scheduler"):
        return None
    return ClientConfig(scheduler=data["scheduler"], token=token, from_file=True)


def _read_file() -> dict[str, str]:
    try:
        data = json.loads(config_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(scheduler: str, token: str = "") -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the token is a secret
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"scheduler": scheduler, "token": token}, indent=2) + "\n")
    tmp.replace(path)
    return path
