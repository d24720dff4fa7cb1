"""`stoker serve`: ephemeral apps with -dev URLs, live reload, gone when serve goes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    APPS,
    Cluster,
    Serve,
    alive,
    base_env,
    descendants,
    stoker_command,
    wait_until,
)

RELOAD_APP = """
import modal

app = modal.App("live")


@app.function()
@modal.fastapi_endpoint()
def greet():
    return {"greeting": "GREETING"}
"""


@pytest.fixture
def live_app(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    path = folder / "live.py"
    path.write_text(RELOAD_APP.replace("GREETING", "hello"))
    return path


@pytest.fixture
def served(cluster: Cluster, live_app: Path) -> Iterator[Serve]:
    serve = Serve(live_app, cluster.env)
    yield serve
    serve.stop()


def test_serve_prints_a_dev_url_that_answers(cluster: Cluster, served: Serve) -> None:
    url = served.url("greet")
    assert url == f"http://ws--live-greet-dev.localhost:{cluster.http_port}"
    assert cluster.get(url).json() == {"greeting": "hello"}


def test_saving_the_file_changes_the_endpoint(cluster: Cluster, served: Serve, live_app: Path) -> None:
    url = served.url("greet")
    assert cluster.get(url).json() == {"greeting": "hello"}
    live_app.write_text(RELOAD_APP.replace("GREETING", "reloaded"))
    # serve says so once every ingress routes by the new version: from then on it answers.
    served.output.wait_for(lambda line: line == "Reloaded live.py (version 2)", timeout=30)
    assert cluster.get(url).json() == {"greeting": "reloaded"}


def test_requests_during_reloads_are_all_answered(cluster: Cluster, served: Serve, live_app: Path) -> None:
    """A request routed by the ingress's table from just before a reload is served by the new
    version (or the old one, if it got there first), never refused."""
    url = served.url("greet")
    answers: list[tuple[int, str]] = []
    done = threading.Event()

    def poll() -> None:
        for _ in range(5000):  # bounded; ends sooner when the reloads are done
            if done.is_set():
                return
            response = cluster.get(url)
            answers.append((response.status_code, response.text))
            time.sleep(0.01)  # two pollers stay under the workspace's 200 requests/s

    pollers = [threading.Thread(target=poll) for _ in range(2)]
    for poller in pollers:
        poller.start()
    try:
        for version in range(6):
            greeting = {"greeting": f"version-{version}"}
            live_app.write_text(RELOAD_APP.replace("GREETING", greeting["greeting"]))
            assert wait_until(lambda: cluster.get(url).json() == greeting, timeout=10, interval=0.05)  # noqa: B023
    finally:
        done.set()
        for poller in pollers:
            poller.join(30)
    refused = [answer for answer in answers if answer[0] != 200]
    assert answers and not refused, refused[:3]


def test_a_broken_save_keeps_the_previous_version_serving(cluster: Cluster, served: Serve, live_app: Path) -> None:
    url = served.url("greet")
    live_app.write_text("import modal\nraise SyntaxError('half-typed')\n")
    served.output.wait_for(lambda line: line.startswith("Reload failed"), timeout=10)
    assert cluster.get(url).json() == {"greeting": "hello"}
    assert served.process.poll() is None


def test_the_app_is_gone_when_serve_exits(cluster: Cluster, served: Serve) -> None:
    url = served.url("greet")
    assert cluster.get(url).status_code == 200
    assert served.stop(signal.SIGINT) == 0
    assert wait_until(lambda: cluster.get(url).status_code == 404, timeout=10)
    assert "live" not in cluster.stoker("app", "list").stdout


def test_the_app_is_gone_when_serve_is_killed(cluster: Cluster, served: Serve) -> None:
    url = served.url("greet")
    assert cluster.get(url).status_code == 200
    served.stop(signal.SIGKILL)
    assert wait_until(lambda: cluster.get(url).status_code == 404, timeout=15)


def test_serve_runs_an_embedded_cluster_when_none_is_configured(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = base_env(home)
    env["STOKER_HTTP_PORT"] = "0"
    app_file = tmp_path / "quickstart.py"
    shutil.copy(APPS / "seed_quickstart.py", app_file)
    serve = Serve(app_file, env)
    try:
        url = serve.url("hello")
        assert "starting a local one" in serve.output.text()
        probe = Cluster(home=home, state_dir=tmp_path)
        assert probe.get(url).json() == "Hello world!"
        family = descendants(serve.process.pid)
        assert len(family) >= 4  # scheduler, worker, ingress, a container (+ their children)
        # Other commands on the machine find serve's cluster while it runs.
        listed = subprocess.run(stoker_command("app", "list"), env=env, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert "quickstart" in listed.stdout
        # A deploy there works, and says that it lasts only as long as the serve.
        deployed = subprocess.run(
            stoker_command("deploy", str(app_file)), env=env, capture_output=True, text=True, timeout=90
        )
        assert deployed.returncode == 0, deployed.stderr
        assert f"the one `stoker serve` (pid {serve.process.pid}) started for itself" in deployed.stderr
    finally:
        assert serve.stop(signal.SIGINT) == 0
    assert wait_until(lambda: not any(alive(p) for p in family), timeout=15)
    after = subprocess.run(stoker_command("app", "list"), env=env, capture_output=True, text=True, timeout=60)
    assert after.returncode == 1
    assert "no stoker cluster is configured" in after.stderr


def test_a_newer_serve_takes_the_label_over_until_it_exits(cluster: Cluster, served: Serve, tmp_path: Path) -> None:
    url = served.url("greet")
    other = tmp_path / "elsewhere" / "live.py"  # the same app, from another checkout
    other.parent.mkdir()
    other.write_text(RELOAD_APP.replace("GREETING", "newer"))
    newer = Serve(other, cluster.env)
    try:
        assert newer.url("greet") == url
        assert cluster.get(url).json() == {"greeting": "newer"}
    finally:
        assert newer.stop() == 0
    # The older serve is still running: the label is its own again.
    assert wait_until(lambda: cluster.get(url).json() == {"greeting": "hello"}, 10)


def test_a_serve_the_scheduler_refuses_says_why(cluster: Cluster, tmp_path: Path) -> None:
    app_file = tmp_path / "bad.py"
    app_file.write_text(RELOAD_APP.replace('"live"', '"not a dns name!"'))
    serve = Serve(app_file, cluster.env)
    code = serve.process.wait(60)
    output = serve.output.text()
    assert code == 1, output
    assert "Error: app name 'not a dns name!' is not valid" in output
    assert "AioRpcError" not in output and "Traceback" not in output
