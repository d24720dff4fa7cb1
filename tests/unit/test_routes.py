"""Host name -> web function (ingress/routes.py)."""

from __future__ import annotations

import pytest

from ingress.routes import Route, RouteTable
from protos import stoker_pb2 as pb


@pytest.fixture
def table() -> RouteTable:
    return RouteTable(
        pb.RouteTable(
            routes=[
                pb.Route(hosts=["acme--web.example.com", "api.custom.io"], function_id="web"),
                pb.Route(hosts=["*.example.com"], function_id="wild", requires_proxy_auth=True),
                pb.Route(hosts=["*.custom.io"], function_id="custom-wild"),
            ]
        )
    )


def function_of(table: RouteTable, host: str) -> str | None:
    route = table.match(host)
    return route.function_id if route is not None else None


def test_exact_host_matches(table: RouteTable) -> None:
    assert table.match("acme--web.example.com") == Route("web", requires_proxy_auth=False)


def test_every_host_of_a_route_matches(table: RouteTable) -> None:
    assert function_of(table, "api.custom.io") == "web"


def test_port_is_ignored(table: RouteTable) -> None:
    assert function_of(table, "acme--web.example.com:8080") == "web"


def test_case_is_ignored(table: RouteTable) -> None:
    assert function_of(table, "ACME--Web.Example.COM") == "web"


def test_trailing_dot_is_ignored(table: RouteTable) -> None:
    assert function_of(table, "acme--web.example.com.") == "web"
    assert function_of(table, "acme--web.example.com.:443") == "web"


def test_wildcard_matches_one_level_below(table: RouteTable) -> None:
    assert table.match("other.example.com") == Route("wild", requires_proxy_auth=True)


def test_wildcard_does_not_match_the_bare_domain(table: RouteTable) -> None:
    assert function_of(table, "example.com") is None


def test_wildcard_does_not_match_two_levels_below(table: RouteTable) -> None:
    assert function_of(table, "a.b.example.com") is None


def test_exact_host_wins_over_wildcard(table: RouteTable) -> None:
    assert function_of(table, "api.custom.io") == "web"
    assert function_of(table, "www.custom.io") == "custom-wild"


def test_unknown_host_matches_nothing(table: RouteTable) -> None:
    assert function_of(table, "unknown.org") is None
    assert function_of(table, "") is None
    assert function_of(table, "localhost:8000") is None


def test_ip_literal_hosts_match_nothing(table: RouteTable) -> None:
    assert function_of(table, "127.0.0.1:8000") is None
    assert function_of(table, "[::1]:8000") is None
    assert function_of(table, "[::1]") is None


def test_empty_table_matches_nothing() -> None:
    assert RouteTable().match("acme--web.example.com") is None
    assert RouteTable(pb.RouteTable()).match("acme--web.example.com") is None
