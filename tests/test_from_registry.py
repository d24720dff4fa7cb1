"""Image.from_registry on a real cluster: images the test pushes to Debian's docker-registry on
loopback, pulled by the worker (worker/registry/) into an image's base layer."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import APPS, Cluster, parse_endpoints, running_cluster
from tests.registry_helpers import Registry, file, make_layer, push_image, rootfs_layer, whiteout
from worker.registry.manifest import this_platform

APP = APPS / "from_registry.py"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, debian_rootfs: Path) -> Iterator[Registry]:
    """The registry, holding debian/python:bookworm (Debian with its python3, a marker file and an
    env var in its config) and debian/no-python:bookworm (the same, its interpreter whited out)."""
    server = Registry(tmp_path_factory.mktemp("registry")).start()
    base = rootfs_layer(debian_rootfs, tmp_path_factory.mktemp("layers") / "base.tar")
    marker = make_layer(file("usr/local/share/marker", "pushed by the test\n"))
    no_python = make_layer(whiteout("usr/bin/python3"), whiteout("usr/bin/python3.11"))
    config = {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "IMAGE_GREETING=from the image config"]}
    architecture = this_platform().architecture
    with httpx.Client(timeout=120) as client:
        for repository, layers in (("debian/python", [base, marker]), ("debian/no-python", [base, marker, no_python])):
            push_image(
                client, server.url, repository, "bookworm", layers, architecture=architecture, image_config=config
            )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster"), STOKER_REGISTRY_MIRROR=registry.url) as c:
        yield c


@pytest.fixture(scope="module")
def deployed(cluster: Cluster, registry: Registry) -> Iterator[subprocess.CompletedProcess[str]]:
    cluster.extra_env["TEST_REGISTRY"] = registry.host  # the app file names the registry by it
    try:
        result = cluster.stoker("deploy", str(APP), timeout=600)
    finally:
        del cluster.extra_env["TEST_REGISTRY"]
    assert result.returncode == 0, result.stdout + result.stderr
    yield result


def test_the_deploy_pulls_each_image_and_says_so(
    deployed: subprocess.CompletedProcess[str], registry: Registry
) -> None:
    out = deployed.stdout
    assert f"pulling {registry.host}/debian/python:bookworm" in out
    assert f"from_registry {registry.host}/debian/no-python:bookworm" in out
    assert "add_python 3.11" in out
    pulls = [r for r in registry.requests() if r.startswith("GET /v2/debian/python/manifests/bookworm")]
    assert pulls, registry.requests()


def test_a_function_runs_in_the_pulled_image(cluster: Cluster, deployed: subprocess.CompletedProcess[str]) -> None:
    got = cluster.get(parse_endpoints(deployed.stdout)["pulled"]).json()
    assert got["marker"] == "pushed by the test"  # the image's own layer
    assert got["from_config"] == "from the image config"  # its config's Env
    assert got["python"] == "/usr/bin/python3" and got["version"] == [3, 11]  # Debian's own interpreter


def test_a_docker_hub_name_is_pulled_from_the_workers_mirror(
    cluster: Cluster, deployed: subprocess.CompletedProcess[str]
) -> None:
    got = cluster.get(parse_endpoints(deployed.stdout)["through_mirror"]).json()
    assert got["marker"] == "pushed by the test"


def test_add_python_gives_an_image_without_one_a_workers_python(
    cluster: Cluster, deployed: subprocess.CompletedProcess[str]
) -> None:
    got = cluster.get(parse_endpoints(deployed.stdout)["with_added_python"]).json()
    assert got["marker"] == "pushed by the test"
    assert got["python"].startswith("/usr/local/") and got["version"] == [3, 11]


def test_an_image_without_python_and_no_add_python_fails_the_deploy_saying_so(
    cluster: Cluster, registry: Registry, tmp_path: Path
) -> None:
    app = tmp_path / "no_python.py"
    app.write_text(
        "import modal\n"
        "app = modal.App('registry-no-python')\n"
        f"image = modal.Image.from_registry('{registry.host}/debian/no-python:bookworm')\n"
        "@app.function(image=image)\n"
        "@modal.fastapi_endpoint()\n"
        "def f():\n"
        "    return 1\n"
    )
    failed = cluster.stoker("deploy", str(app), timeout=300)
    assert failed.returncode == 1
    assert "the image has no python3" in failed.stderr and "add_python=" in failed.stderr


def test_an_unknown_tag_fails_the_deploy_naming_it(cluster: Cluster, registry: Registry, tmp_path: Path) -> None:
    app = tmp_path / "unknown.py"
    app.write_text(
        "import modal\n"
        "app = modal.App('registry-unknown')\n"
        f"image = modal.Image.from_registry('{registry.host}/debian/python:trixie')\n"
        "@app.function(image=image)\n"
        "@modal.fastapi_endpoint()\n"
        "def f():\n"
        "    return 1\n"
    )
    failed = cluster.stoker("deploy", str(app), timeout=300)
    assert failed.returncode == 1
    assert "trixie" in failed.stderr and "bookworm" in failed.stderr  # the tag asked for, and the one there is
