"""Image references as Docker reads them, the registry config from the worker's flags, which URL a
reference is asked at, auth challenges, and which entry of a multi-platform index is ours."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from worker.registry import Credentials, InvalidReference, RegistryConfig, parse_reference
from worker.registry.auth import parse_challenge
from worker.registry.endpoint import endpoint_for
from worker.registry.errors import PlatformNotFound
from worker.registry.manifest import Descriptor, ImageIndex, Platform, choose_platform, parse_image_config

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "domain", "repository", "tag", "digest"),
    [
        ("python:3.12-slim", "docker.io", "library/python", "3.12-slim", None),
        ("python", "docker.io", "library/python", "latest", None),
        ("bitnami/redis", "docker.io", "bitnami/redis", "latest", None),
        ("docker.io/python:3", "docker.io", "library/python", "3", None),
        ("index.docker.io/library/python", "docker.io", "library/python", "latest", None),
        ("ghcr.io/org/img:tag", "ghcr.io", "org/img", "tag", None),
        ("localhost/img", "localhost", "img", "latest", None),
        ("localhost:5000/x/y@" + DIGEST, "localhost:5000", "x/y", None, DIGEST),
        ("127.0.0.1:5000/x/y:v1@" + DIGEST, "127.0.0.1:5000", "x/y", "v1", DIGEST),
        ("quay.io/a/b/c.d__e-f:1.0_beta", "quay.io", "a/b/c.d__e-f", "1.0_beta", None),
        ("Registry/x", "Registry", "x", "latest", None),  # an uppercase first component can only be a host
    ],
)
def test_references_parse_as_docker_parses_them(
    text: str, domain: str, repository: str, tag: str | None, digest: str | None
) -> None:
    reference = parse_reference(text)
    assert (reference.domain, reference.repository, reference.tag, reference.digest) == (
        domain,
        repository,
        tag,
        digest,
    )
    assert reference.manifest_ref == (digest or tag)


def test_a_reference_reads_in_full() -> None:
    assert str(parse_reference("python:3.12-slim")) == "docker.io/library/python:3.12-slim"
    assert str(parse_reference("localhost:5000/x@" + DIGEST)) == f"localhost:5000/x@{DIGEST}"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty"),
        (" python", "surrounding spaces"),
        ("Python:3", "repository component 'Python'"),
        ("python:", "tag '' is not valid"),
        ("python:-x", "tag '-x' is not valid"),
        ("org//img", "repository component ''"),
        ("ghcr.io/", "repository component ''"),
        ("python@sha256:abc", "is not a digest"),
        ("python@sha256:" + "AB" * 32, "64 lowercase hex"),
        ("python@sha512:" + "ab" * 64, "only sha256 digests"),
        ("bad_host.io:x/img", "not a registry host"),
        ("a/" + "b" * 256, "longer than 255"),
    ],
)
def test_malformed_references_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(InvalidReference, match="image reference") as caught:
        parse_reference(text)
    assert complaint in str(caught.value)


def test_config_from_flags_reads_docker_config_json_and_credential_flags(tmp_path: Path) -> None:
    auth_file = tmp_path / "config.json"
    auth_file.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hubuser:hub:pass").decode()},
                    "ghcr.io": {"username": "gh", "password": "tok"},
                    "helper.example": {},  # a credential helper's entry carries nothing
                },
                "credsStore": "desktop",
            }
        )
    )
    config = RegistryConfig.from_flags(
        mirror="http://127.0.0.1:5000/",
        auth_file=auth_file,
        credentials=["ghcr.io=override:secret", "127.0.0.1:5000=mirror:pw"],
        insecure_registries=["registry.lan:5000"],
    )
    assert config.mirror == "http://127.0.0.1:5000"
    assert config.credentials_for("registry-1.docker.io") == Credentials("hubuser", "hub:pass")
    assert config.credentials_for("ghcr.io") == Credentials("override", "secret")  # the flag wins
    assert config.credentials_for("helper.example") is None
    assert "secret" not in repr(config)

    hub = endpoint_for(parse_reference("python:3.12"), config)
    assert (hub.base_url, hub.name, hub.credentials) == (
        "http://127.0.0.1:5000",
        "127.0.0.1:5000",
        Credentials("mirror", "pw"),
    )
    lan = endpoint_for(parse_reference("registry.lan:5000/x"), config)
    assert lan.base_url == "http://registry.lan:5000"
    assert endpoint_for(parse_reference("ghcr.io/x/y"), config).base_url == "https://ghcr.io"
    assert endpoint_for(parse_reference("localhost:5000/x"), config).base_url == "http://localhost:5000"
    assert endpoint_for(parse_reference("[::1]:5000/x"), config).base_url == "http://[::1]:5000"


def test_docker_hub_without_a_mirror_is_registry_1_with_hub_credentials() -> None:
    config = RegistryConfig(credentials={"docker.io": Credentials("u", "p")})
    hub = endpoint_for(parse_reference("python"), config)
    assert (hub.base_url, hub.credentials) == ("https://registry-1.docker.io", Credentials("u", "p"))


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        ({"mirror": "127.0.0.1:5000"}, "not an http:// or https:// URL"),
        ({"credentials": ["ghcr.io:user:pw"]}, "not host=user:password"),
        ({"credentials": ["ghcr.io=userpw"]}, "not host=user:password"),
    ],
)
def test_malformed_flags_say_which(flags: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as caught:
        RegistryConfig.from_flags(**flags)  # type: ignore[arg-type]
    assert "userpw" not in str(caught.value) and ":pw" not in str(caught.value)


def test_a_bad_auth_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"auths": {"ghcr.io": {"auth": "not base64!"}}}')
    with pytest.raises(ValueError, match=f"registry auth file {bad}: 'auth' of 'ghcr.io'"):
        RegistryConfig.from_flags(auth_file=bad)
    with pytest.raises(ValueError, match="registry auth file"):
        RegistryConfig.from_flags(auth_file=tmp_path / "missing.json")


def test_challenges_parse_with_quoted_commas() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/python:pull,push"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/python:pull,push",
    }
    assert parse_challenge('Basic realm="Registry Realm"').params == {"realm": "Registry Realm"}


def _entry(os_name: str, architecture: str, variant: str = "") -> Descriptor:
    return Descriptor(
        "application/vnd.oci.image.manifest.v1+json",
        f"sha256:{architecture}{variant}",
        1,
        Platform(os_name, architecture, variant),
    )


def test_the_index_entry_for_this_platform_is_chosen() -> None:
    index = ImageIndex(
        (
            _entry("unknown", "unknown"),
            _entry("linux", "arm", "v7"),
            _entry("linux", "arm64", "v8"),
            _entry("linux", "amd64"),
        )
    )
    assert choose_platform(index, Platform("linux", "amd64"), "img").digest == "sha256:amd64"
    assert choose_platform(index, Platform("linux", "arm64"), "img").digest == "sha256:arm64v8"
    assert choose_platform(index, Platform("linux", "arm", "v7"), "img").digest == "sha256:armv7"
    with pytest.raises(
        PlatformNotFound,
        match=r"img has no image for linux/s390x \(it has: linux/amd64, linux/arm/v7, linux/arm64/v8\)",
    ):
        choose_platform(index, Platform("linux", "s390x"), "img")


def test_the_image_config_gives_env_workdir_user_and_command() -> None:
    config = parse_image_config(
        json.dumps(
            {
                "architecture": "arm64",
                "os": "linux",
                "variant": "v8",
                "config": {"Env": ["A=1", "B=x=y", "EMPTY="], "WorkingDir": "/srv", "Cmd": ["run"]},
            }
        ).encode(),
        "img",
    )
    assert config.env == {"A": "1", "B": "x=y", "EMPTY": ""}
    assert (config.workdir, config.user, config.entrypoint, config.cmd) == ("/srv", "", (), ("run",))
    assert str(config.platform) == "linux/arm64/v8"
    assert parse_image_config(b'{"os": "linux"}', "img").env == {}
