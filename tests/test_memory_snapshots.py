"""Memory snapshots on a real cluster (`enable_memory_snapshot=True`): the app's import and its
`@modal.enter(snap=True)` hooks run once per worker, in a template process each container forks
from; the snap=False hooks run in each container. tests/apps/snapshots.py records every import
and hook, with the process's pid and parent pid, in $HOME/snapshot-events.log.

Which process ran what is told by pids and parent pids as the host sees them, so these clusters
run containers on the host (`--insecure-no-sandbox`): a sandbox gives each container a PID
namespace of its own. tests/test_sandbox.py forks sandboxed containers from a snapshot."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import APPS, Cluster, alive, program_result, run_program, running_cluster, wait_until

ON_THE_HOST = {"STOKER_INSECURE_NO_SANDBOX": "1"}


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("snapshots"), **ON_THE_HOST) as c:
        yield c


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, **ON_THE_HOST) as c:
        yield c


@pytest.fixture(scope="module")
def urls(shared_cluster: Cluster) -> dict[str, str]:
    return shared_cluster.deploy("snapshots.py")


def events(cluster: Cluster, kind: str) -> list[list[str]]:
    """The recorded events of `kind`: [pid, parent pid, details...] each."""
    path = cluster.home / "snapshot-events.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.split()[1:] for line in lines if line.split()[0] == kind]


def concurrent_predictions(
    cluster: Cluster, calls: int, size: str = "small", hold: float = 2.0
) -> list[dict[str, object]]:
    """`calls` predictions at once, each held a while, so that each needs a container of its own."""
    result = program_result(
        cluster,
        f"""
        import json
        from concurrent.futures import ThreadPoolExecutor
        import client as modal

        model = modal.Cls.from_name("snapshots", "Model")(size={size!r})
        with ThreadPoolExecutor({calls}) as pool:
            print(json.dumps(list(pool.map(lambda i: model.predict.remote(i, hold={hold}), range({calls})))))
        """,
    )
    assert isinstance(result, list)
    return result


def test_import_and_snap_hooks_run_once_for_several_containers(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    results = concurrent_predictions(shared_cluster, 3)
    pids = {r["pid"] for r in results}
    assert len(pids) == 3, "each call ran in a container of its own"
    (snap,) = [e for e in events(shared_cluster, "snap") if e[2] == "small"]
    template = int(snap[0])
    # The snap=True hook ran in one process, which imported the module: the template.
    assert [int(e[0]) for e in events(shared_cluster, "import")].count(template) == 1
    # Each container is a fork of it and ran the snap=False hook itself, and no import.
    entered = [e for e in events(shared_cluster, "enter") if e[2] == "small"]
    assert {int(e[0]) for e in entered} == pids and len(entered) == 3
    assert {int(e[1]) for e in entered} == {template}
    assert not {int(e[0]) for e in events(shared_cluster, "import")} & pids
    for r in results:
        # What the snap hook built is in each container, which entered on its own.
        assert r["built_by"] == template and r["entered_by"] == r["pid"] and r["y"] == 2 * results.index(r)
    # A plain function's snapshot is its import: its container is a fork of a template too.
    hello = shared_cluster.get(urls["hello"])
    assert hello.status_code == 200, hello.text
    assert hello.json()["template"] in {int(e[0]) for e in events(shared_cluster, "import")}


def test_the_template_has_the_apps_secrets_and_nothing_of_a_container_or_the_cluster(
    shared_cluster: Cluster, urls: dict[str, str]
) -> None:
    (result,) = concurrent_predictions(shared_cluster, 1)
    assert result["secret_seen"] == "s3cret"  # the function's secrets, as on Modal
    assert result["gpus_seen"] == ""  # no GPU: CUDA must not be initialised before the fork
    environ = result["template_environ"]
    assert isinstance(environ, list)
    assert "SNAPSHOT_SECRET" in environ
    for name in ("STOKER_CLUSTER_SECRET", "STOKER_TOKEN", "STOKER_SCHEDULER", "STOKER_CONTAINER_ID"):
        assert name not in environ


def test_each_parameter_set_has_a_snapshot_of_its_own(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    (large,) = concurrent_predictions(shared_cluster, 1, size="large")
    assert large["y"] == 0 and large["built_by"] != large["pid"]
    (snap,) = [e for e in events(shared_cluster, "snap") if e[2] == "large"]
    assert int(snap[0]) == large["built_by"]  # its snap hook saw its parameters
    (small,) = [e for e in events(shared_cluster, "snap") if e[2] == "small"]
    assert snap[0] != small[0]
    again = program_result(
        shared_cluster,
        """
        import json
        import client as modal
        print(json.dumps(modal.Cls.from_name("snapshots", "Model")(size="large").predict.remote(3)))
        """,
    )
    assert isinstance(again, dict) and again["y"] == 30


def test_a_failing_snap_hook_fails_calls_and_requests_with_its_message(
    shared_cluster: Cluster, urls: dict[str, str]
) -> None:
    message = "@modal.enter method Broken.load failed: RuntimeError: the snapshot's weights are missing"
    response = shared_cluster.get(urls["Broken.web"])
    assert response.status_code == 503
    assert message in response.text
    result = run_program(
        shared_cluster,
        """
        import client as modal
        try:
            modal.Cls.from_name("snapshots", "Broken")().predict.remote()
        except Exception as exc:
            print(type(exc).__name__, exc)
        """,
    )
    assert message in result.stdout, result.stdout + result.stderr
    logs = shared_cluster.stoker("app", "logs", "snapshots").stdout
    assert 'raise RuntimeError("the snapshot\'s weights are missing")' in logs, logs
    assert "[Broken snapshot]" in logs
    # The second caller got the first failure: the hook is not run again for each container.
    assert len(events(shared_cluster, "broken")) == 1


def test_snap_hooks_are_bounded_by_startup_timeout(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    result = run_program(
        shared_cluster,
        """
        import client as modal
        try:
            modal.Cls.from_name("snapshots", "Slow")().predict.remote()
        except Exception as exc:
            print(type(exc).__name__, exc)
        """,
    )
    # The hook sleeps for an hour: the template left its thread behind and exited at the timeout.
    assert "ran longer than startup_timeout=2 s (in Slow.load)" in result.stdout, result.stdout + result.stderr


def test_a_function_call_from_a_snap_hook_is_refused_with_the_fix(
    shared_cluster: Cluster, urls: dict[str, str]
) -> None:
    refused = program_result(
        shared_cluster,
        """
        import json
        import client as modal
        print(json.dumps(modal.Cls.from_name("snapshots", "Caller")().refused.remote()))
        """,
    )
    assert isinstance(refused, str)
    assert refused.startswith("InvalidError") and "make it in a snap=False hook" in refused


def test_a_redeploy_makes_a_new_template_and_the_old_one_goes(tmp_path: Path, cluster: Cluster) -> None:
    app_file = tmp_path / "snapshots.py"
    shutil.copy(APPS / "snapshots.py", app_file)
    cluster.deploy(app_file)
    (first,) = concurrent_predictions(cluster, 1)
    assert first["version"] == "first"
    old_template = int(str(first["built_by"]))
    # A call in flight on the old version while the new one lands: its container keeps serving
    # it, so the old template (its parent) waits for it before it exits.
    held: dict[str, object] = {}
    call = threading.Thread(target=lambda: held.update(concurrent_predictions(cluster, 1, hold=8)[0]))
    call.start()
    assert wait_until(lambda: any(c.in_flight for c in cluster.status().containers if c.function == "Model"), 30)
    app_file.write_text(app_file.read_text().replace('VERSION = "first"', 'VERSION = "second"'))
    cluster.deploy(app_file)
    (second,) = concurrent_predictions(cluster, 1)
    assert second["version"] == "second" and second["built_by"] != old_template
    assert [e[2] for e in events(cluster, "import") if int(e[0]) == second["built_by"]] == ["second"]
    call.join(60)
    assert held["version"] == "first" and held["built_by"] == old_template
    assert wait_until(lambda: not alive(old_template), 30), "the old version's template exits"
    # Stopping the app drops its templates too.
    new_template = int(str(second["built_by"]))
    assert alive(new_template)
    stopped = cluster.stoker("app", "stop", "snapshots")
    assert stopped.returncode == 0, stopped.stderr
    assert wait_until(lambda: not alive(new_template), 30), "a stopped app's template exits"
