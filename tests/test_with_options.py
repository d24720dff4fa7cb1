"""`Cls.with_options()`, `Function.with_options()` and `with_concurrency()` on a real cluster: each
gives calls a pool of containers of its own, with the options given (concurrency, secrets, GPUs,
timeouts), from a plain program and from inside the app; web endpoints keep the deployed options."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Cluster, program_result, run_program, running_cluster


@pytest.fixture(scope="module")
def gpu_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster whose worker declares one GPU, so that gpu= overrides can be placed, and four
    cores, so that a cpu=2 variant fits beside the deployed options' containers (on fewer, idle
    ones of those would stop to make room: scheduler/resources.py)."""
    env = {"STOKER_WORKER_GPUS": "A10G:24", "STOKER_WORKER_CPUS": "4"}
    with running_cluster(tmp_path_factory.mktemp("options"), **env) as c:
        created = c.stoker("secret", "create", "option-secret", "OPTION_TOKEN=from-secret")
        assert created.returncode == 0, created.stdout + created.stderr
        yield c


@pytest.fixture(scope="module")
def urls(gpu_cluster: Cluster) -> dict[str, str]:
    return gpu_cluster.deploy("options.py")


def test_a_class_with_options_and_concurrency_gets_containers_of_its_own(
    gpu_cluster: Cluster, urls: dict[str, str]
) -> None:
    called = program_result(
        gpu_cluster,
        """
        import json
        from concurrent.futures import ThreadPoolExecutor
        import client as modal

        Model = modal.Cls.from_name("options", "Model")
        Variant = Model.with_options(cpu=2, max_containers=1).with_concurrency(max_inputs=4)
        base = Model().where.remote()
        # Four inputs at once, each waiting for the other three in its container: they pass only
        # if the variant's one container runs four inputs at the same time.
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(lambda _: Variant().together.remote(), range(4)))
        print(json.dumps({"base": base, "again": Model().where.remote(), "together": together}))
        """,
    )
    assert isinstance(called, dict)
    base, together = called["base"]["container"], {t["container"] for t in called["together"]}
    assert called["again"]["container"] == base, "the deployed options keep their own pool"
    assert len(together) == 1 and base not in together, "the variant runs in one container of its own"
    # The URL of a web method reaches the deployed options' pool, never a variant's.
    web = gpu_cluster.get(urls["Model.web"])
    assert web.status_code == 200, web.text
    assert web.json()["container"] == base
    # stoker status tells the pools apart, naming what the variant overrides.
    names = {c.container_id: c.function for c in gpu_cluster.status().containers}
    assert names[base] == "Model"
    assert names[together.pop()] == "Model.with_options(cpu=2.0, max_containers=1, max_inputs=4)"


def test_the_base_pool_runs_one_input_at_a_time(gpu_cluster: Cluster, urls: dict[str, str]) -> None:
    # The same four inputs to a variant that overrides no concurrency: the deployed max_inputs=1
    # holds, so they never meet in its one container and the barrier breaks.
    result = run_program(
        gpu_cluster,
        """
        from concurrent.futures import ThreadPoolExecutor
        import client as modal

        Model = modal.Cls.from_name("options", "Model").with_options(max_containers=1)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: Model().together.remote(), range(4)))
        """,
        timeout=180,
    )
    assert result.returncode != 0
    assert "BrokenBarrierError" in result.stderr


def test_secrets_and_env_reach_the_container_and_replace_the_deployed_ones(
    gpu_cluster: Cluster, urls: dict[str, str]
) -> None:
    called = program_result(
        gpu_cluster,
        """
        import json
        import client as modal

        where = modal.Function.from_name("options", "where")
        secret = modal.Secret.from_name("option-secret")
        print(json.dumps({
            "base": where.remote()["token"],
            "named": where.with_options(secrets=[secret]).remote()["token"],
            "inline": where.with_options(env={"OPTION_TOKEN": "inline"}).remote()["token"],
            # Stacked: the later secrets replace the earlier ones; other options combine (the
            # short scaledown_window frees the only GPU soon, for the next test's variant).
            "stacked": where.with_options(secrets=[secret], gpu="A10G", scaledown_window=2)
                .with_options(secrets=[modal.Secret.from_dict({"OPTION_TOKEN": "later"})]).remote(),
        }))
        """,
    )
    assert isinstance(called, dict)
    assert called["base"] is None
    assert called["named"] == "from-secret"
    assert called["inline"] == "inline"
    assert called["stacked"]["token"] == "later" and called["stacked"]["cuda"] == "0"


def test_a_gpu_override_places_on_a_gpu(gpu_cluster: Cluster, urls: dict[str, str]) -> None:
    called = program_result(
        gpu_cluster,
        """
        import json
        import client as modal

        Model = modal.Cls.from_name("options", "Model")
        print(json.dumps({
            "base": Model().where.remote(),
            "gpu": Model.with_options(gpu="A10G", scaledown_window=2)().where.remote(),
        }))
        """,
    )
    assert isinstance(called, dict)
    assert called["base"]["cuda"] is None
    assert called["gpu"]["cuda"] == "0"
    holders = [c for c in gpu_cluster.status().containers if c.container_id == called["gpu"]["container"]]
    assert holders and list(holders[0].gpu_indices) == [0]


def test_a_timeout_override_applies_to_its_calls_only(gpu_cluster: Cluster, urls: dict[str, str]) -> None:
    called = program_result(
        gpu_cluster,
        """
        import json
        import client as modal

        sleepy = modal.Function.from_name("options", "sleepy")
        try:
            sleepy.with_options(timeout=1).remote(30)
            short = "returned"
        except Exception as exc:
            short = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"short": short, "base": sleepy.remote(1.5)}))
        """,
    )
    assert isinstance(called, dict)
    assert "timeout of 1 s" in called["short"]
    assert called["base"] == "woke"


def test_options_from_inside_the_app(gpu_cluster: Cluster, urls: dict[str, str]) -> None:
    response = gpu_cluster.get(urls["inside"])
    assert response.status_code == 200, response.text
    called = response.json()
    assert called["variant"]["container"] != called["base"]["container"]
    assert called["fn"]["token"] == "inside"


def test_bad_options_say_what_was_wrong(gpu_cluster: Cluster, urls: dict[str, str]) -> None:
    result = run_program(
        gpu_cluster,
        """
        import client as modal

        where = modal.Function.from_name("options", "where")
        Model = modal.Cls.from_name("options", "Model")
        for attempt in (
            lambda: where.with_options(timeout=0),
            lambda: where.with_options(cpu="lots"),
            lambda: where.with_options(max_containers=-1),
            lambda: Model.with_concurrency(max_inputs=0),
            lambda: Model.with_concurrency(max_inputs=2, target_inputs=3),
            lambda: where.with_options(volumes={"/data": object()}),
            lambda: Model.with_options(retries="often"),
            lambda: where.with_options(gpu="A10G:99").remote(),
            lambda: where.with_options(gpu="H100").remote(),
            lambda: where.with_options(secrets=[modal.Secret.from_name("no-such-secret")]).remote(),
        ):
            try:
                attempt()
                print("no error")
            except Exception as exc:
                print(f"{type(exc).__name__}: {exc}")
        """,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "InvalidError: with_options(timeout=0.0): timeout must be from 1 to 86400 seconds (24 hours)"
    assert lines[1] == (
        "InvalidError: with_options(cpu='lots'): cpu must be a number of cores (the request) or a "
        "(request, limit) pair of them, above 0"
    )
    assert lines[2] == "InvalidError: with_options(max_containers=-1): max_containers must be at least 0"
    assert lines[3] == "InvalidError: max_inputs must be at least 1, got 0"
    assert lines[4] == "InvalidError: target_inputs must be between 1 and max_inputs (2)"
    assert lines[5].startswith("InvalidError: stoker does not support Function.with_options(volumes=) yet")
    assert lines[6].startswith("InvalidError: Retries parameter must be an integer or instance of modal.Retries")
    assert lines[7].startswith("InvalidError: where: gpu='A10G:99': count 99 in 'A10G:99' is above 8")
    assert lines[8].startswith(
        "ExecutionError: 'where' needs 1 \N{MULTIPLICATION SIGN} H100 (gpu='H100') and no worker has"
    ), lines[8]
    assert lines[9].startswith("NotFoundError: where: with_options(secrets=...) names the secret 'no-such-secret'")
