"""Classes on a real cluster: `@app.cls` with its enter and exit hooks, methods called from a
plain Python program and from inside the app, web methods, parameters that make pools."""

from __future__ import annotations

import pytest

from tests.conftest import Cluster, program_result, run_program, wait_until


@pytest.fixture(scope="module")
def urls(shared_cluster: Cluster) -> dict[str, str]:
    return shared_cluster.deploy("classes.py")


def test_deploy_prints_one_url_per_web_method(urls: dict[str, str]) -> None:
    assert set(urls) == {"Model.web", "Model.ui", "Broken.web", "relay"}
    assert urls["Model.web"].startswith("http://ws--classes-model-web.")
    assert urls["Model.ui"].startswith("http://ws--classes-model-ui.")


def test_methods_and_web_methods_share_one_entered_instance(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    web = shared_cluster.get(urls["Model.web"], params={"x": 5})
    assert web.status_code == 200, web.text
    ui = shared_cluster.get(urls["Model.ui"])
    assert ui.status_code == 200, ui.text
    called = program_result(
        shared_cluster,
        """
        import asyncio, json
        import client as modal

        Model = modal.Cls.from_name("classes", "Model")
        m = Model()

        async def aio():
            return {
                "remote": await m.predict.remote.aio(3),
                "gen": [i async for i in m.stream.remote_gen.aio(3)],
                "async_method": await m.apredict.remote.aio(4),
            }

        spawned = m.predict.spawn(7)
        print(json.dumps({
            "remote": m.predict.remote(3, offset=1),
            "gen": list(m.stream.remote_gen(4)),
            "map": [r["y"] for r in m.predict.map([1, 2, 3])],
            "starmap": [r["y"] for r in m.predict.starmap([(1, 10), (2, 20)])],
            "spawned": spawned.get(timeout=60)["y"],
            "aio": asyncio.run(aio()),
            "web_url": m.web.get_web_url(),
            "plain_url": m.predict.get_web_url(),
        }))
        """,
    )
    assert isinstance(called, dict)
    assert called["remote"]["y"] == 7 and called["remote"]["size"] == "small"
    # snap=True hooks first, then the others; each ran once in the container.
    assert called["remote"]["hooks"] == ["prepare", "load"]
    assert called["gen"] == [0, 2, 4, 6]
    assert called["map"] == [2, 4, 6]
    assert called["starmap"] == [12, 24]
    assert called["spawned"] == 14
    assert called["aio"]["gen"] == [0, 2, 4] and called["aio"]["async_method"] == 8
    assert called["web_url"] == urls["Model.web"] and called["plain_url"] is None
    # One pool for every method (max_containers=1): the web method, the UI and the calls ran in
    # the same container.
    assert web.json() == {"y": 10, "pid": called["remote"]["pid"]}
    assert ui.json() == {"page": "model of size small", "pid": called["remote"]["pid"]}
    assert len(shared_cluster.warm_containers("Model")) == 1


def test_parameters_make_pools_of_their_own(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    called = program_result(
        shared_cluster,
        """
        import json
        import client as modal

        Model = modal.Cls.from_name("classes", "Model")
        print(json.dumps({
            "default": Model().predict.remote(2),
            "default_spelled_out": Model(size="small", scale=1).predict.remote(2),
            "large": Model(size="large").predict.remote(2),
            "large_scaled": Model(size="large", scale=3).predict.remote(2),
        }))
        """,
    )
    assert isinstance(called, dict)
    assert [called[k]["y"] for k in ("default", "large", "large_scaled")] == [4, 20, 60]
    assert called["large"]["size"] == "large"
    assert called["default_spelled_out"]["pid"] == called["default"]["pid"]
    pids = {called[k]["pid"] for k in ("default", "large", "large_scaled")}
    assert len(pids) == 3, "each parameter set runs in containers of its own"
    # From inside the app, the class by its own app's name.
    relayed = shared_cluster.get(urls["relay"], params={"x": 3})
    assert relayed.status_code == 200, relayed.text
    assert relayed.json() == {"small": 6, "large": 30}


def test_bad_calls_say_what_was_wrong(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    result = run_program(
        shared_cluster,
        """
        import client as modal

        Model = modal.Cls.from_name("classes", "Model")
        for attempt in (
            lambda: Model(colour="red").predict.remote(1),
            lambda: Model(size=3).predict.remote(1),
            lambda: Model().nope.remote(1),
            lambda: Model().web.remote(),
            lambda: Model().stream.remote(2),
            lambda: Model().stream.spawn(2),
            lambda: Model("large"),
        ):
            try:
                attempt()
            except Exception as exc:
                print(type(exc).__name__, exc)
        """,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 7, result.stdout
    assert "Model has no parameter colour (its parameters: scale, size)" in lines[0]
    assert "parameter size takes str values, got 3" in lines[1]
    assert lines[2].startswith("NotFoundError") and "has no method 'nope'" in lines[2]
    assert "Model.web is a web function" in lines[3] and urls["Model.web"] in lines[3]
    assert "Model.stream is a generator function: call it with .remote_gen()" in lines[4]
    assert "cannot be spawned" in lines[5]
    assert "keyword arguments only" in lines[6]


def test_enter_failure_fails_calls_and_requests_with_its_message(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    response = shared_cluster.get(urls["Broken.web"])
    assert response.status_code == 503
    assert "@modal.enter method Broken.load failed: RuntimeError: the weights file is missing" in response.text
    result = run_program(
        shared_cluster,
        """
        import client as modal
        try:
            modal.Cls.from_name("classes", "Broken")().predict.remote()
        except Exception as exc:
            print(type(exc).__name__, exc)
        """,
    )
    assert "the weights file is missing" in result.stdout, result.stdout + result.stderr
    logs = shared_cluster.stoker("app", "logs", "classes")
    assert 'raise RuntimeError("the weights file is missing")' in logs.stdout, logs.stdout


def test_exit_hook_runs_when_the_container_stops(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    first = program_result(
        shared_cluster,
        """
        import json
        import client as modal
        print(json.dumps(modal.Cls.from_name("classes", "Model")(size="large", scale=2).predict.remote(1)))
        """,
    )
    assert isinstance(first, dict) and first["y"] == 20
    # A redeploy replaces the containers: the old ones stop, and their exit hooks run.
    shared_cluster.deploy("classes.py")

    def unloaded() -> bool:
        logs = shared_cluster.stoker("app", "logs", "classes").stdout
        return "unloading the large model" in logs

    assert wait_until(unloaded, 60, interval=0.5)
    logs = shared_cluster.stoker("app", "logs", "classes").stdout.splitlines()
    loaded = next(i for i, line in enumerate(logs) if "loaded the large model" in line)
    unloading = next(i for i, line in enumerate(logs) if "unloading the large model" in line)
    assert loaded < unloading
