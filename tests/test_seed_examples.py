"""The seed's examples (Quick Start, Simple Endpoints, ASGI, WSGI), verbatim, on a real cluster,
called the way the seed calls them."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import Cluster


def test_quick_start_says_hello(shared_cluster: Cluster) -> None:
    urls = shared_cluster.deploy("seed_quickstart.py")
    assert urls == {"hello": f"http://ws--seed-quickstart-hello.localhost:{shared_cluster.http_port}"}
    response = shared_cluster.get(urls["hello"])
    assert response.status_code == 200
    assert response.json() == "Hello world!"


def test_query_parameter(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("seed_query.py")["square"]
    response = shared_cluster.get(url, "/?x=42")
    assert response.status_code == 200
    assert response.json() == {"square": 1764}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_query_parameter_with_curl_as_the_seed_shows(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("seed_query.py")["square"]
    # curl resolves *.localhost to the loopback address itself: no DNS set-up needed.
    result = subprocess.run(["curl", "-s", f"{url}?x=42"], capture_output=True, text=True, timeout=30)
    assert result.stdout == '{"square":1764}'


def test_post_with_json_body(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("seed_post.py")["square"]
    response = shared_cluster.post(url, json={"x": 42})
    assert response.status_code == 200
    assert response.json() == {"square": 1764}


def test_pydantic_body(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("seed_pydantic.py")["process"]
    response = shared_cluster.post(url, json={"name": "bolt"})
    assert response.json() == {"processed": "bolt", "quantity": 42}
    response = shared_cluster.post(url, json={"name": "nut", "qty": 7})
    assert response.json() == {"processed": "nut", "quantity": 7}


def test_pydantic_bad_body_is_422(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("seed_pydantic.py")["process"]
    response = shared_cluster.post(url, json={"qty": "many"})
    assert response.status_code == 422
    fields = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert ("body", "name") in fields
    assert ("body", "qty") in fields


def test_asgi_app_routes(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("seed_asgi.py")["fastapi_app"]
    assert shared_cluster.get(url).json() == {"message": "Hello"}
    echoed = shared_cluster.post(url, "/echo", json={"a": [1, 2], "b": "c"})
    assert echoed.status_code == 200
    assert echoed.json() == {"a": [1, 2], "b": "c"}
    assert shared_cluster.get(url, "/missing").status_code == 404


def test_wsgi_flask_echo(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("seed_wsgi.py")["flask_app"]
    echoed = shared_cluster.post(url, "/echo", json={"hello": "flask"})
    assert echoed.status_code == 200
    assert echoed.json() == {"hello": "flask"}


def test_unknown_host_is_404_naming_it(shared_cluster: Cluster) -> None:
    response = shared_cluster.get(f"http://ws--no-such-app.localhost:{shared_cluster.http_port}")
    assert response.status_code == 404
    assert "ws--no-such-app.localhost" in response.text
    assert "No web endpoint" in response.text
