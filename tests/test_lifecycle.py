"""Containers and the cluster over time: warm reuse, failures, restarts, clean shutdown."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.conftest import Cluster, alive, descendants, host_pid, make_cluster, wait_until


def _containers(cluster: Cluster, app: str) -> int:
    result = cluster.stoker("app", "list")
    for line in result.stdout.splitlines():
        fields = line.split()
        if fields and fields[0] == app:
            return int(fields[3])
    return 0


def test_warm_container_serves_the_next_request(cluster: Cluster) -> None:
    url = cluster.deploy("warm.py")["pid"]
    first = cluster.get(url).json()["pid"]
    second = cluster.get(url).json()["pid"]
    assert first == second
    assert _containers(cluster, "warm") == 1, cluster.output.text() if cluster.output else ""


def test_idle_container_stops_after_scaledown_window(cluster: Cluster) -> None:
    url = cluster.deploy("behaviour.py")["pid"]
    record = cluster.get(url).json()["pid"]
    pid = host_pid(record)
    assert alive(pid)
    # scaledown_window=2 in the app: the container goes, and the next request starts a new one.
    assert wait_until(lambda: not alive(pid), timeout=15)
    assert cluster.get(url).json()["pid"] != record


def test_exception_is_500_and_the_container_keeps_serving(cluster: Cluster) -> None:
    url = cluster.deploy("behaviour.py")["boom"]
    failed = cluster.get(url)
    assert failed.status_code == 500
    ok = cluster.get(url, "/?fail=false")
    assert ok.status_code == 200
    assert cluster.get(url, "/?fail=false").json()["pid"] == ok.json()["pid"]
    assert cluster.output is not None
    assert wait_until(lambda: "RuntimeError: boom on purpose" in cluster.output.text(), timeout=5)


def test_broken_app_file_fails_deploy_and_changes_nothing(cluster: Cluster) -> None:
    before = cluster.stoker("app", "list").stdout
    result = cluster.stoker("deploy", str(Path(__file__).parent / "apps" / "broken_import.py"))
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "ValueError: this app file is broken on purpose" in result.stderr
    assert "nothing was deployed" in result.stderr
    assert cluster.stoker("app", "list").stdout == before


def test_missing_app_file_is_a_clear_error(cluster: Cluster) -> None:
    result = cluster.stoker("deploy", "/nonexistent/app.py")
    assert result.returncode == 1
    assert "does not exist" in result.stderr


def test_app_stop_removes_the_endpoint(cluster: Cluster) -> None:
    url = cluster.deploy("seed_query.py")["square"]
    pid_before = cluster.get(url, "/?x=2").status_code
    assert pid_before == 200
    stopped = cluster.stoker("app", "stop", "seed-query")
    assert stopped.returncode == 0, stopped.stderr
    assert cluster.get(url, "/?x=2").status_code == 404
    missing = cluster.stoker("app", "stop", "seed-query")
    assert missing.returncode == 1
    assert "no deployed app named 'seed-query'" in missing.stderr


def test_deploy_survives_a_full_cluster_restart(tmp_path: Path) -> None:
    first = make_cluster(tmp_path)
    first.home.mkdir()
    first.start()
    url = first.deploy("seed_query.py")["square"]
    assert first.get(url, "/?x=3").json() == {"square": 9}
    assert first.stop() == 0

    second = make_cluster(tmp_path)  # same state dir, new processes, new ports
    second.start()
    try:
        moved = url.replace(f":{first.http_port}", f":{second.http_port}")
        assert second.get(moved, "/?x=4").json() == {"square": 16}
        assert "seed-query" in second.stoker("app", "list").stdout
    finally:
        second.stop()


def test_up_writes_the_client_config(cluster: Cluster) -> None:
    config = json.loads((cluster.home / ".stoker" / "config.json").read_text())
    assert config["scheduler"] == cluster.scheduler


def test_up_leaves_no_process_behind(cluster: Cluster) -> None:
    url = cluster.deploy("seed_asgi.py")["fastapi_app"]
    assert cluster.get(url).status_code == 200
    assert cluster.process is not None
    family = descendants(cluster.process.pid)
    assert len(family) >= 4  # scheduler, worker, ingress, a container
    assert cluster.stop(signal.SIGINT) == 0
    assert wait_until(lambda: not any(alive(p) for p in family), timeout=15), [p for p in family if alive(p)]


def test_killed_up_takes_its_daemons_and_containers_along(cluster: Cluster) -> None:
    url = cluster.deploy("seed_query.py")["square"]
    assert cluster.get(url, "/?x=1").status_code == 200
    assert cluster.process is not None
    family = descendants(cluster.process.pid)
    cluster.stop(signal.SIGKILL)
    assert wait_until(lambda: not any(alive(p) for p in family), timeout=20), [p for p in family if alive(p)]


def test_a_url_is_live_when_deploy_returns_and_gone_when_stop_returns(cluster: Cluster, tmp_path: Path) -> None:
    source = (Path(__file__).parent / "apps" / "seed_query.py").read_text()
    for i in range(4):
        app_file = tmp_path / f"fresh{i}.py"
        app_file.write_text(source.replace('modal.App("seed-query")', f'modal.App("fresh-{i}")'))
        url = cluster.deploy(app_file)["square"]
        assert cluster.get(url, "/?x=2").status_code == 200  # no wait between deploy and request
        assert cluster.stoker("app", "stop", f"fresh-{i}").returncode == 0
        assert cluster.get(url, "/?x=2").status_code == 404
