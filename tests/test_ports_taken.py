"""A port already taken: every command that would listen on it says which, in one line, and
starts nothing."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import APPS, base_env, stoker_command


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def _run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    return subprocess.run(
        stoker_command(*args), env={**base_env(home), **env}, capture_output=True, text=True, timeout=60
    )


def _refused(result: subprocess.CompletedProcess[str], *says: str) -> None:
    """Exit status 1, an error that says each of `says`, and no traceback."""
    assert result.returncode == 1
    for text in says:
        assert text in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_serve_says_its_http_port_is_taken_and_how_to_choose_another(tmp_path: Path, taken_port: int) -> None:
    result = _run(tmp_path / "home", "serve", str(APPS / "seed_quickstart.py"), STOKER_HTTP_PORT=str(taken_port))
    _refused(result, f"Error: the HTTP port {taken_port} on 127.0.0.1 is in use", "STOKER_HTTP_PORT")


def test_up_says_its_scheduler_port_is_taken(tmp_path: Path, taken_port: int) -> None:
    result = _run(
        tmp_path / "home", "up", "--http-port", "0", "--grpc-port", str(taken_port), "--state-dir", str(tmp_path / "s")
    )
    _refused(result, f"the scheduler port {taken_port} on 127.0.0.1 is in use", "--grpc-port")


def test_the_ingress_daemon_says_it_cannot_listen(tmp_path: Path, taken_port: int) -> None:
    result = _run(
        tmp_path / "home", "ingress", "--host", "127.0.0.1", "--port", str(taken_port), "--scheduler", "127.0.0.1:9"
    )
    _refused(result, f"Error: the ingress cannot listen on 127.0.0.1:{taken_port}: Address already in use")


def test_the_scheduler_daemon_says_it_cannot_listen(tmp_path: Path, taken_port: int) -> None:
    result = _run(
        tmp_path / "home", "scheduler", "--host", "127.0.0.1", "--port", str(taken_port), "--state-dir", str(tmp_path)
    )
    _refused(result, f"Error: the scheduler cannot listen on 127.0.0.1:{taken_port}")
