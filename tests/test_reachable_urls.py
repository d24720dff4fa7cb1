"""get_web_url()'s URLs, under the default `localhost` domain, reached by Python's HTTP clients
(httpx, aiohttp, urllib) as they are, with no Host header tricks: from a program that imports the
SDK and from inside the app's containers. glibc here does not resolve `*.localhost` (RFC 6761),
the SDK does (client/localhost.py); for programs without the SDK the ingress says how to fix it."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from ingress.localhost_names import FIX, system_resolves
from tests.conftest import Cluster, program_result


@pytest.fixture(scope="module")
def url(shared_cluster: Cluster) -> str:
    return shared_cluster.deploy("reachable.py")["hello"]


def test_a_program_that_imports_the_sdk_reaches_the_url_with_each_client(shared_cluster: Cluster, url: str) -> None:
    assert urlsplit(url).hostname == "ws--reachable-hello.localhost"
    fetched = program_result(
        shared_cluster,
        """
        import asyncio, json, urllib.request
        import aiohttp, httpx
        import client as modal

        url = modal.Function.from_name("reachable", "hello").get_web_url()

        async def with_aiohttp():
            async with aiohttp.ClientSession() as session:
                async with session.get(url + "/", params={"who": "aiohttp"}) as response:
                    return await response.json()

        async def with_httpx_async():
            async with httpx.AsyncClient() as client:
                return (await client.get(url + "/", params={"who": "httpx-async"})).json()

        with urllib.request.urlopen(url + "/?who=urllib", timeout=30) as response:
            by_urllib = json.loads(response.read())
        print(json.dumps({
            "urllib": by_urllib,
            "httpx": httpx.get(url + "/", params={"who": "httpx"}).json(),
            "aiohttp": asyncio.run(with_aiohttp()),
            "httpx_async": asyncio.run(with_httpx_async()),
        }))
        """,
    )
    assert fetched == {
        "urllib": {"hello": "urllib"},
        "httpx": {"hello": "httpx"},
        "aiohttp": {"hello": "aiohttp"},
        "httpx_async": {"hello": "httpx-async"},
    }


def test_a_function_reaches_its_apps_own_url_with_each_client(shared_cluster: Cluster, url: str) -> None:
    fetched = program_result(
        shared_cluster,
        """
        import json
        import client as modal

        print(json.dumps({
            "sync": modal.Function.from_name("reachable", "fetch_sync").remote(),
            "async": modal.Function.from_name("reachable", "fetch_async").remote(),
        }))
        """,
    )
    assert fetched == {
        "sync": {"url": url, "urllib": {"hello": "urllib"}, "httpx": {"hello": "httpx"}},
        "async": {"url": url, "aiohttp": {"hello": "aiohttp"}, "httpx_async": {"hello": "httpx-async"}},
    }


def test_the_ingress_says_once_when_the_system_cannot_resolve_them(shared_cluster: Cluster, url: str) -> None:
    host = urlsplit(url).hostname
    assert host is not None
    if system_resolves(host):
        pytest.skip("this machine resolves *.localhost itself (nss-myhostname): nothing to say")
    assert shared_cluster.output is not None
    line = shared_cluster.output.wait_for(lambda line: "does not resolve on this machine" in line, timeout=30)
    assert FIX in line
    shared_cluster.deploy("reachable.py")  # a second route table: still one line
    warnings = [line for line in shared_cluster.output.text().splitlines() if "does not resolve" in line]
    assert len(warnings) == 1, warnings
