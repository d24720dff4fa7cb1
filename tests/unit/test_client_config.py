"""Where the CLI and SDK find the cluster: the environment, the file `stoker up` wrote, or a
running `stoker serve`'s embedded cluster, whichever was started later."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from client import config


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("STOKER_SCHEDULER", raising=False)
    monkeypatch.delenv("STOKER_TOKEN", raising=False)
    return tmp_path


def _age(path: Path, seconds: float) -> None:
    stat = path.stat()
    os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_nothing_configured_is_none() -> None:
    assert config.load() is None


def test_the_file_stoker_up_wrote() -> None:
    config.save("127.0.0.1:7700", "tok-up")
    assert config.load() == config.ClientConfig("127.0.0.1:7700", "tok-up", from_file=True)
    assert config.config_path().stat().st_mode & 0o777 == 0o600  # it holds a token


def test_a_running_serves_cluster_is_found_and_named() -> None:
    config.announce_serve_cluster("127.0.0.1:4242", "tok-serve")
    found = config.load()
    assert found == config.ClientConfig("127.0.0.1:4242", "tok-serve", serve_pid=os.getpid())


def test_a_serve_cluster_started_after_stoker_up_wrote_its_file_wins() -> None:
    config.save("127.0.0.1:7700", "tok-up")
    _age(config.config_path(), 60)  # a `stoker up` that has stopped since
    config.announce_serve_cluster("127.0.0.1:4242", "tok-serve")
    found = config.load()
    assert found is not None and found.scheduler == "127.0.0.1:4242"


def test_a_stoker_up_started_after_the_serve_wins() -> None:
    config.announce_serve_cluster("127.0.0.1:4242", "tok-serve")
    _age(config.serve_cluster_path(), 60)
    config.save("127.0.0.1:7700", "tok-up")
    found = config.load()
    assert found is not None and found.scheduler == "127.0.0.1:7700"


def test_a_killed_serves_file_is_ignored() -> None:
    path = config.serve_cluster_path()
    path.parent.mkdir(parents=True)
    path.write_text(f'{{"scheduler": "127.0.0.1:4242", "token": "t", "pid": {_dead_pid()}}}')
    assert config.load() is None


def test_serve_itself_looks_past_another_serves_cluster() -> None:
    config.announce_serve_cluster("127.0.0.1:4242", "tok-serve")
    assert config.load(include_serve_cluster=False) is None


def test_the_environment_overrides_both(monkeypatch: pytest.MonkeyPatch) -> None:
    config.announce_serve_cluster("127.0.0.1:4242", "tok-serve")
    config.save("127.0.0.1:7700", "tok-up")
    monkeypatch.setenv("STOKER_SCHEDULER", "10.0.0.5:7700")
    assert config.load() == config.ClientConfig("10.0.0.5:7700", "tok-up")  # the token still from the file


def test_a_serve_withdraws_only_its_own_announcement() -> None:
    path = config.serve_cluster_path()
    path.parent.mkdir(parents=True)
    path.write_text('{"scheduler": "127.0.0.1:4242", "token": "t", "pid": 1}')  # another serve's
    config.withdraw_serve_cluster()
    assert path.exists()
    config.announce_serve_cluster("127.0.0.1:4243", "t2")
    config.withdraw_serve_cluster()
    assert not path.exists()
