"""A class's container from its start to its stop, on a real cluster: `@modal.wsgi_app` and
`@modal.web_server` methods served by the entered instance, and `@modal.exit` hooks run, their
output in `stoker app logs`, whatever stops the container (scale-down, `stoker app stop`, a
redeploy, its worker's SIGTERM), within a bound that a hanging hook cannot stretch."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from tests.conftest import (
    APPS,
    Cluster,
    LineReader,
    alive,
    host_pid,
    live_worker_pid,
    program_result,
    stoker_command,
    stop_process,
    wait_until,
)


def deploy_as(cluster: Cluster, tmp_path: Path, name: str) -> dict[str, str]:
    """class_exit.py deployed as an app of its own: what stops one test's containers leaves the
    others' alone."""
    app_file = tmp_path / f"{name}.py"
    app_file.write_text((APPS / "class_exit.py").read_text().replace('App("class-exit")', f'App("{name}")'))
    shutil.copy(APPS / "identity.py", tmp_path)  # the module it imports, beside it
    return cluster.deploy(app_file)


def call(cluster: Cluster, app: str, cls: str, method: str, **parameters: str) -> object:
    return program_result(
        cluster,
        f"""
        import json
        import client as modal
        print(json.dumps(modal.Cls.from_name({app!r}, {cls!r})(**{parameters!r}).{method}.remote()))
        """,
    )


def logs(cluster: Cluster, app: str) -> list[str]:
    return cluster.stoker("app", "logs", app).stdout.splitlines()


def index_of(lines: list[str], text: str) -> int:
    return next(i for i, line in enumerate(lines) if text in line)


def test_wsgi_and_web_server_methods_serve_the_entered_instance(shared_cluster: Cluster) -> None:
    urls = shared_cluster.deploy("class_web.py")
    assert set(urls) == {"Site.wsgi", "Site.server"}
    wsgi = shared_cluster.get(urls["Site.wsgi"], "/page")
    assert wsgi.status_code == 200, wsgi.text
    server = shared_cluster.get(urls["Site.server"], "/other?q=1")
    assert server.status_code == 200, server.text
    state = call(shared_cluster, "class-web", "Site", "state")
    assert isinstance(state, dict)
    assert wsgi.json() == {"entered": state["entered"], "via": "wsgi", "hits": ["wsgi"], "path": "/page"}
    assert server.json() == {
        "entered": state["entered"],
        "via": "web_server",
        "hits": ["wsgi", "web_server"],
        "path": "/other?q=1",
    }
    assert state["hits"] == ["wsgi", "web_server", "method"]


def test_exit_runs_at_scale_down(shared_cluster: Cluster, tmp_path: Path) -> None:
    deploy_as(shared_cluster, tmp_path, "exit-scaledown")
    pid = host_pid(call(shared_cluster, "exit-scaledown", "Brief", "pid", tag="idle"))
    assert isinstance(pid, int)

    def ran() -> bool:
        return any("exit hook of idle ran after scale-down" in line for line in logs(shared_cluster, "exit-scaledown"))

    assert wait_until(ran, 60, interval=0.5)
    assert wait_until(lambda: not alive(pid), 30)
    left = [c for c in shared_cluster.status().containers if c.app_name == "exit-scaledown"]
    assert not left, left


def test_exit_runs_at_app_stop_and_its_output_reaches_a_follower(shared_cluster: Cluster, tmp_path: Path) -> None:
    urls = deploy_as(shared_cluster, tmp_path, "exit-stop")
    pid = host_pid(call(shared_cluster, "exit-stop", "Hooked", "pid", tag="stopped"))
    assert isinstance(pid, int)
    follow = subprocess.Popen(
        stoker_command("app", "logs", "exit-stop", "-f"),
        env=shared_cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    output = LineReader(follow.stdout)
    try:
        output.wait_for(lambda line: "entered stopped" in line, timeout=30)
        # A web request too: the ingress now holds a stream to the container, as does the
        # scheduler for the call. Neither may hold up the stop.
        assert shared_cluster.get(urls["Hooked.web"]).status_code == 200
        assert shared_cluster.stoker("app", "stop", "exit-stop").returncode == 0
        # The follower ends once the app's containers are gone, having read their last words.
        assert follow.wait(60) == 0
    finally:
        stop_process(follow, signal.SIGKILL)
    lines = output.text().splitlines()
    assert index_of(lines, "exit hook of stopped started") < index_of(lines, "exit hook of stopped finished")
    assert not alive(pid)
    assert "exit-stop" not in shared_cluster.stoker("app", "list").stdout


def test_exit_runs_at_redeploy(shared_cluster: Cluster, tmp_path: Path) -> None:
    deploy_as(shared_cluster, tmp_path, "exit-redeploy")
    pid = host_pid(call(shared_cluster, "exit-redeploy", "Hooked", "pid", tag="replaced"))
    assert isinstance(pid, int)
    deploy_as(shared_cluster, tmp_path, "exit-redeploy")

    def finished() -> bool:
        return any("exit hook of replaced finished" in line for line in logs(shared_cluster, "exit-redeploy"))

    assert wait_until(finished, 60, interval=0.5)
    lines = logs(shared_cluster, "exit-redeploy")
    assert index_of(lines, "entered replaced") < index_of(lines, "exit hook of replaced started")
    assert wait_until(lambda: not alive(pid), 30)


def test_a_hanging_exit_hook_is_cut_off_and_the_container_still_stops(shared_cluster: Cluster, tmp_path: Path) -> None:
    deploy_as(shared_cluster, tmp_path, "exit-stuck")
    pid = host_pid(call(shared_cluster, "exit-stuck", "Stuck", "pid"))
    assert isinstance(pid, int)
    deploy_as(shared_cluster, tmp_path, "exit-stuck")  # stops the old container

    def cut_off() -> bool:
        return any("did not finish within" in line for line in logs(shared_cluster, "exit-stuck"))

    assert wait_until(cut_off, 60, interval=0.5)
    assert wait_until(lambda: not alive(pid), 30), "the container outlived its exit hook's bound"
    lines = logs(shared_cluster, "exit-stuck")
    assert index_of(lines, "the stuck exit hook started") < index_of(lines, "did not finish within 4 s")
    assert not any("never: the first hook used up the bound" in line for line in lines)


def test_exit_runs_when_the_worker_is_stopped(cluster: Cluster) -> None:
    urls = cluster.deploy("class_exit.py")
    record = call(cluster, "class-exit", "Hooked", "pid")
    assert cluster.get(urls["Hooked.web"]).json() == {"pid": record}  # an ingress stream is open too
    pid = host_pid(record)
    assert pid
    worker = live_worker_pid(cluster)
    os.kill(worker, signal.SIGTERM)
    assert wait_until(lambda: not alive(worker), 60)
    assert not alive(pid)
    assert cluster.output is not None
    # It stopped by itself, its containers first (`stoker up` starts it again).
    cluster.output.wait_for(lambda line: "the worker exited with code 0; restarting it" in line, timeout=30)
    lines = logs(cluster, "class-exit")
    assert index_of(lines, "exit hook of default started") < index_of(lines, "exit hook of default finished")
