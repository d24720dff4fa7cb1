"""Images built on workers as uv virtual environments, on a real cluster."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    APPS,
    Cluster,
    Serve,
    live_worker_pid,
    parse_endpoints,
    running_cluster,
    wait_until,
    worker_pid,
)

APP = "images.py"


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster whose worker builds into its own image directory, not the one tests share."""
    directory = tmp_path_factory.mktemp("cluster")
    with running_cluster(directory, STOKER_IMAGE_DIR=str(directory / "state" / "worker" / "images")) as c:
        yield c


@pytest.fixture(scope="module")
def first_deploy(shared_cluster: Cluster) -> Iterator[subprocess.CompletedProcess[str]]:
    result = shared_cluster.stoker("deploy", str(APPS / APP), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    yield result


def test_the_base_environment_lacks_the_package_the_image_installs() -> None:
    shown = subprocess.run([sys.executable, "-m", "pip", "show", "inflection"], capture_output=True, text=True)
    assert shown.returncode != 0, "inflection is installed in the test environment: pick another package"


def test_deploy_builds_the_image_and_shows_its_output(first_deploy: subprocess.CompletedProcess[str]) -> None:
    out = first_deploy.stdout
    assert "$ uv pip install inflection==0.5.1" in out
    assert "+ inflection==0.5.1" in out  # uv's own output, streamed
    assert '$ echo "built by run_commands"' in out
    assert out.index("built on worker") < out.index("Created web function info")


def test_the_endpoint_runs_in_the_image(
    shared_cluster: Cluster, first_deploy: subprocess.CompletedProcess[str]
) -> None:
    url = parse_endpoints(first_deploy.stdout)["info"]
    got = shared_cluster.get(url).json()
    assert got["camel"] == "StokerImages"  # imported from the image's own site-packages
    assert got["greeting"] == "hello from the image"  # .env()
    assert got["marker"] == "built by run_commands"  # .run_commands() ran with the venv active
    assert "/images/im-" in got["prefix"]


def test_a_function_without_an_image_runs_in_the_workers_environment(
    shared_cluster: Cluster, first_deploy: subprocess.CompletedProcess[str]
) -> None:
    got = shared_cluster.get(parse_endpoints(first_deploy.stdout)["plain"]).json()
    assert got == {"prefix": sys.prefix, "has_inflection": False}


def test_a_second_deploy_of_the_same_spec_reuses_the_build(
    shared_cluster: Cluster, first_deploy: subprocess.CompletedProcess[str]
) -> None:
    again = shared_cluster.stoker("deploy", str(APPS / APP))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already built" in again.stdout
    assert "uv pip install" not in again.stdout
    url = parse_endpoints(again.stdout)["info"]
    assert shared_cluster.get(url).json()["camel"] == "StokerImages"


def test_a_failing_build_fails_the_deploy_and_the_previous_version_keeps_serving(
    shared_cluster: Cluster, first_deploy: subprocess.CompletedProcess[str]
) -> None:
    before = _version(shared_cluster)
    failed = shared_cluster.stoker("deploy", str(APPS / "images_broken.py"), timeout=300)
    assert failed.returncode == 1
    assert "stoker-no-such-package-7f3a" in failed.stderr
    assert "No solution found" in failed.stderr  # the installer's own error
    assert "Created web function" not in failed.stdout
    assert _version(shared_cluster) == before
    url = parse_endpoints(first_deploy.stdout)["info"]
    assert shared_cluster.get(url).json()["camel"] == "StokerImages"


def test_a_python_version_no_worker_has_fails_with_a_clear_error(shared_cluster: Cluster) -> None:
    failed = shared_cluster.stoker("deploy", str(APPS / "images_python.py"), timeout=300)
    assert failed.returncode == 1
    assert "Python 3.4 is not installed on worker" in failed.stderr
    assert "never downloads" in failed.stderr


def test_a_worker_that_joins_later_builds_the_image_before_its_container_starts(
    shared_cluster: Cluster, first_deploy: subprocess.CompletedProcess[str]
) -> None:
    # The worker comes back (stoker up restarts it) with its images gone, like a new machine
    # joining while the app is live: no deploy happens, yet the endpoint must work.
    worker_dir = shared_cluster.state_dir / "worker"
    old_pid = live_worker_pid(shared_cluster)
    shutil.rmtree(worker_dir / "images")
    os.kill(old_pid, signal.SIGKILL)
    assert wait_until(lambda: worker_pid(shared_cluster) not in (0, old_pid), 60)
    assert wait_until(lambda: len(shared_cluster.status().workers) == 1, 60)
    got = shared_cluster.get(parse_endpoints(first_deploy.stdout)["info"]).json()
    assert got["camel"] == "StokerImages"
    assert any((worker_dir / "images").glob("im-*/.stoker-built"))


def _version(cluster: Cluster) -> int:
    listed = cluster.stoker("app", "list")
    for line in listed.stdout.splitlines():
        if line.startswith("images "):
            return int(line.split()[2])
    raise AssertionError(listed.stdout)


def test_serve_prints_the_build_output(shared_cluster: Cluster) -> None:
    serve = Serve(APPS / APP, shared_cluster.env)
    try:
        url = serve.url("info", timeout=300)
        text = serve.output.text()
        # The module's first deploy built it: serve says it reuses that build, before the URLs.
        assert "is already built on worker" in text
        assert text.index("is already built") < text.index("Created web function info")
        assert shared_cluster.get(url).json()["camel"] == "StokerImages"
    finally:
        assert serve.stop() == 0


def test_a_python_version_that_is_not_one_is_refused_before_any_build(shared_cluster: Cluster, tmp_path: Path) -> None:
    app = tmp_path / "badpython.py"
    app.write_text(
        "import modal\n"
        "app = modal.App('badpython')\n"
        "@app.function(image=modal.Image.debian_slim(python_version='3.x'))\n"
        "@modal.fastapi_endpoint()\n"
        "def f():\n"
        "    return 1\n"
    )
    failed = shared_cluster.stoker("deploy", str(app))
    assert failed.returncode == 1
    assert "python_version '3.x' is not a Python version" in failed.stderr
    assert "uv" not in failed.stdout
