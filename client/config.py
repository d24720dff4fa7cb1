"""Where the client finds the cluster: STOKER_SCHEDULER / STOKER_TOKEN, else the config file
that `stoker up` wrote under $HOME, or the embedded cluster of a `stoker serve` still running
(whichever of those two was started later)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protos import container_env as cenv


def config_path() -> Path:
    return Path(os.environ.get("HOME", str(Path.home()))) / ".stoker" / "config.json"


def serve_cluster_path() -> Path:
    """Where a `stoker serve` that started its own cluster says so, while it runs."""
    return config_path().with_name("serve-cluster.json")


@dataclass(frozen=True)
class ClientConfig:
    scheduler: str
    token: str = ""
    from_file: bool = False
    serve_pid: int = 0  # the `stoker serve` whose embedded cluster this is (gone when it exits); 0: none


def load(include_serve_cluster: bool = True) -> ClientConfig | None:
    """The configured cluster, or None when nothing names one."""
    scheduler = os.environ.get(cenv.SCHEDULER, "")
    token = os.environ.get(cenv.TOKEN, "")
    if scheduler and token:
        return ClientConfig(scheduler=scheduler, token=token)  # no file to read (every call in a container)
    data, written = _read(config_path())
    if scheduler:
        return ClientConfig(scheduler=scheduler, token=token or data.get("token", ""))
    if include_serve_cluster:
        serving, started = _running_serve_cluster()
        if serving and started >= written:
            return ClientConfig(
                scheduler=serving["scheduler"], token=token or serving.get("token", ""), serve_pid=serving["pid"]
            )
    if not data.get("scheduler"):
        return None
    return ClientConfig(scheduler=data["scheduler"], token=token or data.get("token", ""), from_file=True)


def _read(path: Path) -> tuple[dict[str, Any], float]:
    """A JSON object file's contents and when it was written; ({}, 0) if there is none."""
    try:
        data = json.loads(path.read_text())
        written = path.stat().st_mtime
    except (OSError, ValueError):
        return {}, 0.0
    return (data, written) if isinstance(data, dict) else ({}, 0.0)


def _running_serve_cluster() -> tuple[dict[str, Any], float]:
    data, started = _read(serve_cluster_path())
    pid = data.get("pid")
    if not isinstance(pid, int) or not data.get("scheduler") or not _alive(pid):
        return {}, 0.0  # none, or one left by a serve that was killed
    return data, started


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def save(scheduler: str, token: str = "") -> Path:
    """What `stoker up` writes for the CLI and SDK."""
    return _write_private(config_path(), {"scheduler": scheduler, "token": token})


def announce_serve_cluster(scheduler: str, token: str) -> Path:
    """A `stoker serve` that started its own cluster tells other commands where it is."""
    return _write_private(serve_cluster_path(), {"scheduler": scheduler, "token": token, "pid": os.getpid()})


def withdraw_serve_cluster() -> None:
    """Take back announce_serve_cluster(), unless a later serve has announced its own since."""
    data, _ = _read(serve_cluster_path())
    if data.get("pid") == os.getpid():
        serve_cluster_path().unlink(missing_ok=True)


def _write_private(path: Path, data: dict[str, object]) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the token is a secret
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path
