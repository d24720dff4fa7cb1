"""Labels, host names and URLs of web endpoints (scheduler/urls.py)."""

from __future__ import annotations

import hashlib

import pytest

from scheduler import urls


def test_normalize_label_lowercases_and_replaces_other_characters_with_dashes() -> None:
    assert urls.normalize_label("My_App.v2 Beta") == "my-app-v2-beta"


def test_normalize_label_strips_leading_and_trailing_dashes() -> None:
    assert urls.normalize_label("__hello__") == "hello"


def test_default_label_joins_app_and_function_with_a_dash() -> None:
    assert urls.default_label("My_App", "Predict") == "my-app-predict"


def test_default_label_is_a_valid_label_for_typical_names() -> None:
    assert urls.is_valid_label(urls.default_label("example.app", "web_fn"))


@pytest.mark.parametrize("label", ["a", "web", "my-app-predict", "a1-b2", "x" * 63])
def test_is_valid_label_accepts(label: str) -> None:
    assert urls.is_valid_label(label)


@pytest.mark.parametrize("label", ["", "-web", "web-", "Web", "we_b", "we.b", "wéb", "x" * 64])
def test_is_valid_label_rejects(label: str) -> None:
    assert not urls.is_valid_label(label)


@pytest.mark.parametrize("domain", ["example.com", "api.example.com", "API.Example.COM", "*.example.com", "a-b.c-d.io"])
def test_is_valid_domain_accepts(domain: str) -> None:
    assert urls.is_valid_domain(domain)


@pytest.mark.parametrize(
    "domain",
    [
        "",
        "localhost",
        "example.com.",
        "-a.example.com",
        "a-.example.com",
        "a..example.com",
        "a.*.example.com",
        "*example.com",
        "ex_ample.com",
        "http://example.com",
        "example.com:8080",
        f"{'a' * 64}.com",
        ".".join(["a" * 63] * 4) + ".com",  # over 253 characters
    ],
)
def test_is_valid_domain_rejects(domain: str) -> None:
    assert not urls.is_valid_domain(domain)


def test_subdomain_joins_workspace_and_label_with_two_dashes() -> None:
    assert urls.subdomain("acme", "", "predict", ephemeral=False) == "acme--predict"


def test_subdomain_puts_the_environment_after_the_workspace() -> None:
    assert urls.subdomain("acme", "staging", "predict", ephemeral=False) == "acme-staging--predict"


def test_subdomain_of_an_ephemeral_app_ends_in_dev() -> None:
    assert urls.subdomain("acme", "", "predict", ephemeral=True) == "acme--predict-dev"
    assert urls.subdomain("acme", "prod", "predict", ephemeral=True) == "acme-prod--predict-dev"


def test_subdomain_of_exactly_63_characters_is_not_cut() -> None:
    label = "x" * (63 - len("acme--"))
    assert urls.subdomain("acme", "", label, ephemeral=False) == f"acme--{label}"


def test_subdomain_over_63_characters_follows_the_documented_cut_rule() -> None:
    label = "a" * 40 + "-" + "b" * 30
    full = f"acme-prod--{label}"
    assert len(full) > 63
    digest = hashlib.sha256(full.encode()).hexdigest()[:6]
    expected = f"{full[:56].rstrip('-')}-{digest}"
    assert urls.subdomain("acme", "prod", label, ephemeral=False) == expected


def test_subdomain_cut_drops_dashes_at_the_cut_point() -> None:
    # The 56th character is a dash, so the kept part must not end in "--<hash>".
    label = "a" * (55 - len("acme--")) + "-" * 5 + "b" * 20
    cut = urls.subdomain("acme", "", label, ephemeral=False)
    assert "--" not in cut[len("acme--") :]
    assert urls.is_valid_label(cut)


def test_subdomain_cut_is_deterministic() -> None:
    label = "very-long-function-name-" * 4
    first = urls.subdomain("acme", "prod", label.strip("-"), ephemeral=False)
    second = urls.subdomain("acme", "prod", label.strip("-"), ephemeral=False)
    assert first == second


def test_long_subdomains_sharing_a_prefix_still_differ() -> None:
    prefix = "shared-prefix-" * 5
    one = urls.subdomain("acme", "", prefix + "one", ephemeral=False)
    two = urls.subdomain("acme", "", prefix + "two", ephemeral=False)
    assert one != two
    assert one[:50] == two[:50]


def test_long_ephemeral_and_deployed_subdomains_differ() -> None:
    label = "x" * 60
    assert urls.subdomain("acme", "", label, ephemeral=True) != urls.subdomain("acme", "", label, ephemeral=False)


@pytest.mark.parametrize("ephemeral", [False, True])
@pytest.mark.parametrize("environment", ["", "production-eu-west"])
@pytest.mark.parametrize("label_length", [1, 40, 57, 58, 63])
def test_subdomain_is_always_a_valid_dns_label(ephemeral: bool, environment: str, label_length: int) -> None:
    label = ("ab-" * 30)[:label_length].strip("-") or "a"
    result = urls.subdomain("acme-corp", environment, label, ephemeral)
    assert len(result) <= urls.MAX_DNS_LABEL
    assert urls.is_valid_label(result)


@pytest.mark.parametrize(
    ("scheme", "port", "expected"),
    [
        ("http", 80, "http://acme--web.example.com"),
        ("https", 443, "https://acme--web.example.com"),
        ("http", 0, "http://acme--web.example.com"),
        ("http", 8080, "http://acme--web.example.com:8080"),
        ("https", 80, "https://acme--web.example.com:80"),
        ("http", 443, "http://acme--web.example.com:443"),
    ],
)
def test_web_url_omits_only_the_scheme_default_port(scheme: str, port: int, expected: str) -> None:
    assert urls.web_url(scheme, "acme--web.example.com", port) == expected
