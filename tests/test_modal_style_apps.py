"""Apps written the way Modal's own examples write them (tests/apps/sentiment.py), deployed and
used end to end: a model class loaded in @modal.enter, called with .remote() and over its
@modal.fastapi_endpoint method, and a web UI class with @modal.concurrent serving a FastAPI page
through @modal.asgi_app that calls the model."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import Cluster, program_result


@pytest.fixture(scope="module")
def urls(shared_cluster: Cluster) -> dict[str, str]:
    return shared_cluster.deploy("sentiment.py")


def test_the_model_class_is_called_remotely_and_over_http(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    assert set(urls) == {"Model.web", "WebUI.ui"}
    called = program_result(
        shared_cluster,
        """
        import json
        import client as modal

        Model = modal.Cls.from_name("example-sentiment", "Model")
        print(json.dumps([Model().predict.remote(t) for t in ("I love it, great!", "slow and broken")]))
        """,
    )
    assert isinstance(called, list)
    assert [(r["label"], r["score"]) for r in called] == [("POSITIVE", 2.0), ("NEGATIVE", -2.0)]
    web = shared_cluster.post(urls["Model.web"], json={"text": "a happy day"})
    assert web.status_code == 200, web.text
    # The same container, its model loaded once.
    assert web.json() == {"label": "POSITIVE", "score": 1.0, "model": "tiny-sentiment-v1", "pid": called[0]["pid"]}
    assert shared_cluster.post(urls["Model.web"], json={}).status_code == 500  # no "text": the app's own error
    docs = shared_cluster.get(urls["Model.web"], "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    logs = shared_cluster.stoker("app", "logs", "example-sentiment").stdout
    assert logs.count("loading tiny-sentiment-v1") == 1, logs


def test_the_web_ui_serves_its_form_and_calls_the_model(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    page = shared_cluster.get(urls["WebUI.ui"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<form method="post" action="/classify">' in page.text
    answer = shared_cluster.post(
        urls["WebUI.ui"],
        "/classify",
        content="text=what+an+awful+%3Cday%3E",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200, answer.text
    assert "what an awful &lt;day&gt;: <b>NEGATIVE</b> (-1)" in answer.text


def test_the_web_ui_takes_concurrent_requests_in_one_container(shared_cluster: Cluster, urls: dict[str, str]) -> None:
    n = 6
    with ThreadPoolExecutor(n) as pool:
        responses = list(pool.map(lambda _: shared_cluster.get(urls["WebUI.ui"], "/gather", params={"n": n}), range(n)))
    assert [r.status_code for r in responses] == [200] * n, [r.text for r in responses]
    assert len({r.json()["pid"] for r in responses}) == 1  # max_containers=1: all in one, at once
