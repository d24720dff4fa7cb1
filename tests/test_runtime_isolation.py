"""The container runtime's gRPC and protobuf never collide with the app's (worker/runtime/isolation.py).

Real images, built by the worker with uv from PyPI: one pins protobuf 4.25 (older than the
runtime's, without the `runtime_version` the runtime's generated code imports), one grpcio 1.60.
Each app serves a web endpoint that calls its other functions from inside its container
(`.remote()`, `.spawn()`, `from_name`, a generator, a class, one forked from a memory snapshot) and
a @web_server, on a worker that forks containers from templates and on one that starts each
as a new interpreter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import APPS, Cluster, parse_endpoints, running_cluster

RUNTIME_PROTOBUF = "7."  # what the runtime's own generated code needs (pyproject: protobuf>=7.35.1)


@pytest.fixture(scope="module", params=["forked", "fresh"])
def isolation_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    env = {} if request.param == "forked" else {"STOKER_WORKER_FORK": "0"}
    with running_cluster(tmp_path_factory.mktemp(f"isolation-{request.param}"), **env) as cluster:
        yield cluster


def deploy(cluster: Cluster, app_file: str) -> dict[str, str]:
    result = cluster.stoker("deploy", str(APPS / app_file), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return parse_endpoints(result.stdout)


def report(cluster: Cluster, app_file: str) -> tuple[dict[str, Any], dict[str, str]]:
    endpoints = deploy(cluster, app_file)
    response = cluster.get(endpoints["report"], timeout=240)
    if response.status_code != 200:
        app_name = app_file.removesuffix(".py").replace("_", "-")
        logs = cluster.stoker("app", "logs", app_name)
        pytest.fail(f"{response.status_code} {response.text}; the app's logs:\n{logs.stdout}{logs.stderr}")
    return response.json(), endpoints


def assert_calls_worked(got: dict[str, Any]) -> None:
    assert got["remote"]["value"] == 42
    assert got["spawned"] == 10
    assert got["from_name"] == 4
    assert got["stream"] == [0, 1, 2]
    assert got["plain"]["value"] == 12
    # Nothing of grpc, google.* or protos was imported after the app's own imports, in the
    # endpoint's container while it made every kind of call, nor in the others.
    assert got["late_imports"] == []
    for seen in (got["here"], got["remote"], got["plain"], got["snapped"]["at_snapshot"], got["snapped"]["now"]):
        assert seen["late_imports"] == [], seen
        assert seen["foreign"] == [], seen  # every module of the pinned package is the image's
        assert seen["message"] == {"answer": 42.0}  # the app's own protobuf works


def test_an_image_pinning_protobuf_4_25_starts_and_serves(isolation_cluster: Cluster) -> None:
    got, endpoints = report(isolation_cluster, "isolation_protobuf.py")
    assert_calls_worked(got)
    for seen in (got["here"], got["remote"], got["snapped"]["now"]):
        assert seen["protobuf"].startswith("4.25."), seen  # the app's, not the runtime's
        assert seen["protobuf_from_image"] is True
        assert seen["grpc_from_image"] is False  # the image has none: the runtime's is shared
    # A subprocess of the image (the @web_server's server) sees the image's protobuf too.
    served = isolation_cluster.get(endpoints["server"], timeout=120)
    assert served.status_code == 200, served.text
    assert served.json()["protobuf"].startswith("4.25.")


def test_an_image_pinning_an_old_grpcio_starts_and_serves(isolation_cluster: Cluster) -> None:
    got, endpoints = report(isolation_cluster, "isolation_grpc.py")
    assert_calls_worked(got)
    for seen in (got["here"], got["remote"], got["snapped"]["now"]):
        assert seen["grpc"].startswith("1.60."), seen
        assert seen["grpc_from_image"] is True
        assert seen["protobuf"].startswith(RUNTIME_PROTOBUF)  # the image has none: the runtime's
    served = isolation_cluster.get(endpoints["server"], timeout=120)
    assert served.status_code == 200, served.text
    assert served.json()["grpc"].startswith("1.60.")


def python_312() -> str | None:
    """A Python 3.12 on this machine that uv finds, or one under pyenv's root (then the worker is
    given its directory on PATH); None when there is none."""
    uv = [sys.executable, "-m", "uv", "python", "find", "3.12"]
    found = subprocess.run(uv, capture_output=True, text=True, env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    if found.returncode == 0 and found.stdout.strip():
        return str(Path(found.stdout.strip().splitlines()[-1]).parent)
    pyenv = shutil.which("pyenv")
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) if pyenv or "PYENV_ROOT" in os.environ else None
    for candidate in sorted(root.glob("versions/3.12*/bin/python3.12")) if root else []:
        return str(candidate.parent)
    return None


def test_an_image_of_another_python_keeps_the_runtimes_requirements_apart(tmp_path: Path) -> None:
    directory = python_312()
    if directory is None:
        pytest.skip("no Python 3.12 on this machine (neither uv nor pyenv finds one)")
    if os.path.realpath(sys.executable).startswith(os.path.realpath(directory)):
        pytest.skip("the worker's own Python is 3.12: no other Python to test with")
    # Each worker finds interpreters on its own PATH: this cluster's was started without that
    # directory, so a cluster of its own.
    path = directory + os.pathsep + os.environ.get("PATH", "")
    with running_cluster(tmp_path, PATH=path) as cluster:
        got, _ = report(cluster, "isolation_python312.py")
    assert_calls_worked(got)
    for seen in (got["here"], got["remote"], got["snapped"]["now"]):
        assert seen["python"] == "3.12"
        assert seen["protobuf"].startswith("4.25."), seen
        assert seen["protobuf_from_image"] is True
