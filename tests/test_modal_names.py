"""Modal's names on a real cluster: the module aliases in a served app, Modal's mistakes refused at
deploy with the fix and nothing deployed, and the warning for GPUs that no worker has."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import APPS, Cluster, Serve, running_cluster

HEADER = "import modal\n\napp = modal.App({name!r})\n\n"

MISTAKES = {
    "decorators_upside_down": (
        """
@modal.fastapi_endpoint()
@app.function()
def square(x: int):
    return {"square": x**2}
""",
        "Cannot stack `@modal.fastapi_endpoint` on top of `@app.function`. Hint: swap the order of the decorators",
    ),
    "asgi_factory_with_parameters": (
        """
@app.function()
@modal.asgi_app()
def web(prefix: str):
    from fastapi import FastAPI

    return FastAPI()
""",
        "Functions decorated by `@modal.asgi_app` can't have parameters: `web` is called once, with no arguments",
    ),
    "generator_endpoint": (
        """
@app.function()
@modal.fastapi_endpoint()
def stream():
    yield "a"
""",
        "Webhooks cannot be generators: `stream` under `@modal.fastapi_endpoint` yields. For a streaming "
        "response, return `fastapi.responses.StreamingResponse(generator())` instead",
    ),
    "no_functions": ("", "defines no functions: decorate one with @app.function()"),
    "unsupported_option": (
        """
@app.function(ephemeral_disk=1024)
@modal.fastapi_endpoint()
def square(x: int):
    return {"square": x**2}
""",
        "stoker does not support @app.function(ephemeral_disk=) yet",
    ),
    "unsupported_name": (
        """
volume = modal.Volume.from_name("data")
""",
        "stoker does not support modal.Volume yet",
    ),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_a_mistake_fails_deploy_with_the_fix_and_deploys_nothing(
    shared_cluster: Cluster, tmp_path: Path, mistake: str
) -> None:
    body, message = MISTAKES[mistake]
    app_file = tmp_path / f"{mistake}.py"
    app_file.write_text(HEADER.format(name=mistake.replace("_", "-")) + body)
    result = shared_cluster.stoker("deploy", str(app_file))
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr
    assert "nothing was deployed" in result.stderr
    assert "Created web function" not in result.stdout
    assert mistake.replace("_", "-") not in shared_cluster.stoker("app", "list").stdout


def test_an_app_importing_every_alias_module_serves(shared_cluster: Cluster) -> None:
    serve = Serve(APPS / "modal_aliases.py", shared_cluster.env)
    try:
        url = serve.url("same")
        reply = shared_cluster.get(url).json()
    finally:
        assert serve.stop() == 0
    assert reply["same"] == [True] * 6
    assert reply["secret"] == "on"
    assert reply["refused"].startswith("stoker does not support modal.Volume yet")


def test_deploy_warns_of_gpus_no_worker_has_and_names_the_inventory(tmp_path: Path) -> None:
    with running_cluster(tmp_path, STOKER_WORKER_GPUS="A10G:24") as cluster:
        result = cluster.stoker("deploy", str(APPS / "gpus.py"))
        assert result.returncode == 0, result.stdout + result.stderr
        warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]
        # Only `pair` (two H100s) cannot run here; `first` and `second` fit the A10G.
        assert len(warnings) == 1, result.stderr
        assert "'pair' needs 2 × H100 (gpu='H100:2')" in warnings[0]  # noqa: RUF001
        assert "1 × A10G" in warnings[0]  # noqa: RUF001
        assert "add a worker that has them or change gpu=" in warnings[0]
        assert "Deployed gpus.py as version 1." in result.stdout
        assert "Created web function pair => http://" in result.stdout  # live all the same
