"""Endpoint URLs: labels, get_web_url, custom domains (exact and wildcard), environments, and
the deploy errors when a name is already someone else's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import APPS, Cluster, running_cluster


@pytest.fixture(scope="module")
def urls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # Its own cluster: the labels and domains here must not meet other tests' apps.
    with running_cluster(tmp_path_factory.mktemp("urls")) as c:
        yield c


def by_host(cluster: Cluster, host: str, params: dict[str, str] | None = None) -> tuple[int, str]:
    response = cluster.client.get(f"http://127.0.0.1:{cluster.http_port}/", headers={"host": host}, params=params)
    return response.status_code, response.text


def test_custom_label_replaces_app_and_function(urls_cluster: Cluster) -> None:
    urls = urls_cluster.deploy("seed_urls.py")
    assert urls["handler"] == f"http://ws--api.localhost:{urls_cluster.http_port}"
    assert urls_cluster.get(urls["handler"]).json() is None  # `...` returns None


def test_get_web_url_inside_the_app_equals_what_deploy_printed(urls_cluster: Cluster) -> None:
    urls = urls_cluster.deploy("seed_urls.py")
    assert urls["my_endpoint"] == f"http://ws--seed-urls-my-endpoint.localhost:{urls_cluster.http_port}"
    assert urls_cluster.get(urls["my_endpoint"]).json() == {"url": urls["my_endpoint"]}


def test_label_taken_by_another_app_fails_the_deploy(urls_cluster: Cluster) -> None:
    urls = urls_cluster.deploy("seed_urls.py")
    result = urls_cluster.stoker("deploy", str(APPS / "label_thief.py"))
    assert result.returncode == 1
    assert "ws--api.localhost is already used by app 'seed-urls'" in result.stderr
    # Nothing changed: the label still reaches its owner.
    assert urls_cluster.get(urls["handler"]).status_code == 200
    assert "label-thief" not in urls_cluster.stoker("app", "list").stdout


def test_custom_domains_exact_several_and_wildcard(urls_cluster: Cluster) -> None:
    urls_cluster.deploy("seed_domains.py")
    status, body = by_host(urls_cluster, "api.example.com", params={"message": "world"})
    assert (status, body) == (200, '{"message":"hello world"}')  # the exact name beats the wildcard
    assert by_host(urls_cluster, "API.Example.com:443", params={"message": "x"})[0] == 200  # case, port
    assert by_host(urls_cluster, "api.example.net") == (200, '"several"')
    assert by_host(urls_cluster, "api.example.org") == (200, '"several"')
    assert by_host(urls_cluster, "www.example.com") == (200, '"wildcard"')
    assert by_host(urls_cluster, "shop.example.com") == (200, '"wildcard"')
    # A wildcard covers one level: deeper names and the bare domain are not its.
    assert by_host(urls_cluster, "a.b.example.com")[0] == 404
    assert by_host(urls_cluster, "example.com")[0] == 404


def test_custom_domain_taken_by_another_app_fails_the_deploy(urls_cluster: Cluster) -> None:
    urls_cluster.deploy("seed_domains.py")
    result = urls_cluster.stoker("deploy", str(APPS / "domain_thief.py"))
    assert result.returncode == 1
    assert "api.example.com is already used by app 'seed-domains' (function hello)" in result.stderr
    assert by_host(urls_cluster, "api.example.com", params={"message": "still"})[1] == '{"message":"hello still"}'


def test_environment_suffix_gives_a_separate_app(urls_cluster: Cluster, tmp_path: Path) -> None:
    app_file = tmp_path / "envapp.py"
    app_file.write_text(
        "import os\n"
        "import modal\n\n"
        'app = modal.App("envapp")\n\n\n'
        "@app.function()\n"
        "@modal.fastapi_endpoint()\n"
        "def where():\n"
        "    return where.get_web_url()\n"
    )
    plain = urls_cluster.stoker("deploy", str(app_file))
    staging = urls_cluster.stoker("deploy", "--env", "staging", str(app_file))
    assert plain.returncode == 0 and staging.returncode == 0, plain.stderr + staging.stderr
    port = urls_cluster.http_port
    assert f"http://ws--envapp-where.localhost:{port}" in plain.stdout
    assert f"http://ws-staging--envapp-where.localhost:{port}" in staging.stdout
    for url in (f"http://ws--envapp-where.localhost:{port}", f"http://ws-staging--envapp-where.localhost:{port}"):
        assert urls_cluster.get(url).json() == url
    # Stopping one environment's app leaves the other serving.
    assert urls_cluster.stoker("app", "stop", "--env", "staging", "envapp").returncode == 0
    assert urls_cluster.get(f"http://ws-staging--envapp-where.localhost:{port}").status_code == 404
    assert urls_cluster.get(f"http://ws--envapp-where.localhost:{port}").status_code == 200
