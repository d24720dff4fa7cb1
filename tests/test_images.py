"""Images built on workers as Debian root filesystems in layers, on a real cluster.

The base layer (mmdebstrap of bookworm, ~25 s) is built by this module's first deploy into the
image directory the test session shares (tests/conftest.py: IMAGE_DIR), and reused after."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    APPS,
    IMAGE_DIR,
    Cluster,
    Serve,
    live_worker_pid,
    parse_endpoints,
    running_cluster,
    wait_until,
    worker_pid,
)

APP = "images.py"
BUILD_TIMEOUT = 900
# The test apps' images end with this run's id: each run builds them anew (reusing their layers),
# so that its build output shows every step.
os.environ.setdefault("IMAGES_TEST_RUN", uuid.uuid4().hex)


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as c:
        yield c


@pytest.fixture(scope="module")
def first_deploy(shared_cluster: Cluster) -> Iterator[subprocess.CompletedProcess[str]]:
    result = shared_cluster.stoker("deploy", str(APPS / APP), timeout=BUILD_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    yield result


@pytest.fixture(scope="module")
def info(shared_cluster: Cluster, first_deploy: subprocess.CompletedProcess[str]) -> dict[str, object]:
    got = shared_cluster.get(parse_endpoints(first_deploy.stdout)["info"])
    assert got.status_code == 200, got.text
    return dict(got.json())


def _image_ids(output: str) -> list[str]:
    return re.findall(r"image (im-[0-9a-f]+) (?:built|is already built)", output)


def test_the_base_environment_lacks_the_packages_the_image_installs() -> None:
    for package in ("inflection", "six", "humanize", "tabulate"):
        shown = subprocess.run([sys.executable, "-m", "pip", "show", package], capture_output=True, text=True)
        assert shown.returncode != 0, f"{package} is installed in the test environment: pick another package"


def test_deploy_shows_a_progress_line_per_step(first_deploy: subprocess.CompletedProcess[str]) -> None:
    out = first_deploy.stdout
    steps = [
        "[1/13] debian_slim: Debian bookworm",
        "[2/13] apt_install jq",
        "[3/13] pip_install inflection==0.5.1",
        "[4/13] uv_pip_install six==1.16.0",
        "[5/13] pip_install -r requirements.txt",
        "[6/13] pip_install tabulate==0.9.0",
        "[7/13] run_commands echo built by run_commands > /etc/marker && id -u > /etc/marker-uid",
        "[8/13] env GREETING=hello from the image",
        "[9/13] workdir /srv/work",
        "[10/13] add_local_file",
        "[11/13] add_local_dir",
        "[12/13] add_local_python_source",
        "[13/13] env IMAGES_TEST_RUN=",
    ]
    positions = [out.index(step) for step in steps]
    assert positions == sorted(positions)
    assert out.index("[13/13]") < out.index(" built on worker") < out.index("Created web function info")


def test_apt_install_runs_debian_packages_inside_the_image(info: dict[str, object]) -> None:
    assert info["jq"] == "3"
    assert "bookworm" in str(info["os_release"])
    assert info["executable"] == "/usr/bin/python3"


def test_pip_and_uv_install_into_the_image_with_its_own_pip(info: dict[str, object]) -> None:
    assert info["camel"] == "StokerImages"  # pip_install
    assert info["six"] == "1.16.0"  # uv_pip_install
    assert info["humanize"] == "1,234,567"  # pip_install_from_requirements
    assert info["tabulate"] == "0.9.0"  # pip_install_from_pyproject
    assert "/usr/lib/python3/dist-packages/pip" in str(info["pip"])  # Debian's pip, in the image


def test_run_commands_run_as_root_inside_the_image(info: dict[str, object]) -> None:
    assert info["marker"] == "built by run_commands"
    assert info["marker_uid"] == "0"
    assert not Path("/etc/marker").exists() or Path("/etc/marker").read_text().strip() != "built by run_commands"


def test_env_and_workdir_reach_the_container(info: dict[str, object]) -> None:
    assert info["greeting"] == "hello from the image"
    assert info["cwd"] == "/srv/work"


def test_local_files_dirs_and_python_source_land_in_the_image(info: dict[str, object]) -> None:
    assert info["file"] == "hello from a local file"
    assert info["dir"] == ["a.txt", "sub", "sub/b.txt"]  # *.skip ignored
    assert info["helper"] == "from add_local_python_source"


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
    assert "[1/13]" not in again.stdout
    assert _image_ids(again.stdout) == _image_ids(first_deploy.stdout)


def test_an_image_that_begins_alike_reuses_those_layers(
    shared_cluster: Cluster, first_deploy: subprocess.CompletedProcess[str]
) -> None:
    shared = shared_cluster.stoker("deploy", str(APPS / "images_shared.py"), timeout=BUILD_TIMEOUT)
    assert shared.returncode == 0, shared.stdout + shared.stderr
    lines = shared.stdout.splitlines()
    for step in ("[1/5] debian_slim", "[2/5] apt_install jq", "[3/5] pip_install inflection==0.5.1"):
        at = next(i for i, line in enumerate(lines) if line.startswith(step))
        assert "reusing layer ly-" in lines[at + 1], lines[at : at + 3]
    got = shared_cluster.get(parse_endpoints(shared.stdout)["shared"]).json()
    assert got == {"jq": "6", "other": "other"}


def test_a_failing_step_fails_the_deploy_with_its_output_and_the_previous_version_serves_on(
    shared_cluster: Cluster, first_deploy: subprocess.CompletedProcess[str]
) -> None:
    before = _version(shared_cluster, "images")
    failed = shared_cluster.stoker("deploy", str(APPS / "images_broken.py"), timeout=BUILD_TIMEOUT)
    assert failed.returncode == 1
    assert "about to fail" in failed.stdout  # the step's own output, streamed
    assert "failed with exit code 3" in failed.stderr
    assert "Created web function" not in failed.stdout
    assert _version(shared_cluster, "images") == before
    got = shared_cluster.get(parse_endpoints(first_deploy.stdout)["info"]).json()
    assert got["camel"] == "StokerImages"


def test_editing_a_local_file_makes_a_new_image_that_a_redeploy_serves(shared_cluster: Cluster, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text(f"first {uuid.uuid4()}")
    app = tmp_path / "notes.py"
    app.write_text(
        "from pathlib import Path\n"
        "import modal\n"
        "app = modal.App('images-notes')\n"
        f"image = modal.Image.debian_slim().add_local_file({str(note)!r}, '/note.txt')\n"
        "@app.function(image=image)\n"
        "@modal.fastapi_endpoint()\n"
        "def note():\n"
        "    return Path('/note.txt').read_text()\n"
    )
    first = shared_cluster.stoker("deploy", str(app), timeout=BUILD_TIMEOUT)
    assert first.returncode == 0, first.stdout + first.stderr
    url = parse_endpoints(first.stdout)["note"]
    assert shared_cluster.get(url).json() == note.read_text()
    note.write_text(f"second {uuid.uuid4()}")
    second = shared_cluster.stoker("deploy", str(app), timeout=BUILD_TIMEOUT)
    assert second.returncode == 0, second.stdout + second.stderr
    assert _image_ids(second.stdout) != _image_ids(first.stdout)
    assert "reusing layer" in second.stdout  # the base
    assert shared_cluster.get(url).json() == note.read_text()


def test_a_python_the_base_lacks_is_copied_from_the_worker(shared_cluster: Cluster) -> None:
    if not list(Path("/root/.pyenv/versions").glob("3.12.*/bin/python3")):
        pytest.skip("no Python 3.12 on this machine to copy")
    deployed = shared_cluster.stoker("deploy", str(APPS / "images_python.py"), timeout=BUILD_TIMEOUT)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "[2/4] python 3.12: not Debian bookworm's" in deployed.stdout
    got = shared_cluster.get(parse_endpoints(deployed.stdout)["py312"]).json()
    assert got == {"version": [3, 12], "executable": "/usr/local/bin/python3.12", "camel": "AB"}


def test_a_python_version_no_worker_has_fails_naming_the_versions_there_are(shared_cluster: Cluster) -> None:
    failed = shared_cluster.stoker("deploy", str(APPS / "images_python_missing.py"), timeout=BUILD_TIMEOUT)
    assert failed.returncode == 1
    assert "Python 3.4 is not available" in failed.stderr
    assert "Debian bookworm has 3.11" in failed.stderr
    assert "never downloads" in failed.stderr


def test_a_restarted_worker_keeps_its_layers_and_builds_a_lost_image_before_its_container_starts(
    shared_cluster: Cluster, first_deploy: subprocess.CompletedProcess[str]
) -> None:
    # The worker comes back (stoker up restarts it) without the image's record, as one that
    # joins while the app is live: no deploy happens, yet the endpoint works, from the same layers.
    [image] = _image_ids(first_deploy.stdout)
    record = IMAGE_DIR / "images" / f"{image}.json"
    layers = json.loads(record.read_text())["layer_ids"]
    old_pid = live_worker_pid(shared_cluster)
    record.unlink()
    os.kill(old_pid, signal.SIGKILL)
    assert wait_until(lambda: worker_pid(shared_cluster) not in (0, old_pid), 60)
    assert wait_until(lambda: len(shared_cluster.status().workers) == 1, 60)
    got = shared_cluster.get(parse_endpoints(first_deploy.stdout)["info"]).json()
    assert got["camel"] == "StokerImages"
    assert json.loads(record.read_text())["layer_ids"] == layers


def test_serve_prints_the_build_output(shared_cluster: Cluster, first_deploy: subprocess.CompletedProcess[str]) -> None:
    serve = Serve(APPS / APP, shared_cluster.env)
    try:
        url = serve.url("info", timeout=300)
        text = serve.output.text()
        assert "is already built on worker" in text
        assert text.index("is already built") < text.index("Created web function info")
        assert shared_cluster.get(url).json()["camel"] == "StokerImages"
    finally:
        assert serve.stop() == 0


def test_a_missing_local_file_is_refused_naming_it(shared_cluster: Cluster, tmp_path: Path) -> None:
    app = tmp_path / "missing.py"
    app.write_text(
        "import modal\n"
        "app = modal.App('images-missing')\n"
        "image = modal.Image.debian_slim().add_local_file('no-such-file-7f3a.txt', '/x.txt')\n"
        "@app.function(image=image)\n"
        "@modal.fastapi_endpoint()\n"
        "def f():\n"
        "    return 1\n"
    )
    failed = shared_cluster.stoker("deploy", str(app))
    assert failed.returncode == 1
    assert "no-such-file-7f3a.txt" in failed.stderr
    assert "does not exist" in failed.stderr


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
    assert "[1/" not in failed.stdout


def test_prune_deletes_what_no_live_app_uses_and_keeps_what_they_do(
    shared_cluster: Cluster, first_deploy: subprocess.CompletedProcess[str]
) -> None:
    nonce = uuid.uuid4().hex[:8]
    app = shared_cluster.home / "prunable.py"
    app.write_text(
        "import modal\n"
        "app = modal.App('images-prunable')\n"
        f"image = modal.Image.debian_slim().run_commands('echo {nonce} > /etc/prunable')\n"
        "@app.function(image=image)\n"
        "@modal.fastapi_endpoint()\n"
        "def f():\n"
        "    return open('/etc/prunable').read().strip()\n"
    )
    deployed = shared_cluster.stoker("deploy", str(app), timeout=BUILD_TIMEOUT)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    [prunable] = _image_ids(deployed.stdout)
    [kept] = _image_ids(first_deploy.stdout)
    assert (IMAGE_DIR / "images" / f"{prunable}.json").exists()
    assert shared_cluster.stoker("app", "stop", "images-prunable").returncode == 0

    pruned = shared_cluster.stoker("image", "prune", timeout=200)
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    match = re.search(r"removed (\d+) image\(s\) and (\d+) layer\(s\)", pruned.stdout)
    assert match and int(match.group(1)) >= 1 and int(match.group(2)) >= 1, pruned.stdout
    assert not (IMAGE_DIR / "images" / f"{prunable}.json").exists()
    record = json.loads((IMAGE_DIR / "images" / f"{kept}.json").read_text())
    assert all((IMAGE_DIR / "layers" / f"{layer}.done").exists() for layer in record["layer_ids"])
    # The live app's image is whole: a fresh deploy finds it built.
    again = shared_cluster.stoker("deploy", str(APPS / APP))
    assert again.returncode == 0 and "already built" in again.stdout, again.stdout + again.stderr


def _version(cluster: Cluster, name: str) -> int:
    listed = cluster.stoker("app", "list")
    for line in listed.stdout.splitlines():
        if line.startswith(f"{name} "):
            return int(line.split()[2])
    raise AssertionError(listed.stdout)
