"""Pulling images from a real registry on loopback (Debian's docker-registry), images the tests
build and push themselves: layers applied in order with their whiteouts, symlinks and modes, the
image config, multi-platform indexes, digests, the blob cache, the errors a user sees, token and
basic auth, and hostile layers that must not write outside the destination."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.registry_helpers import (
    Layer,
    Pushed,
    Registry,
    TokenServer,
    directory,
    file,
    free_port,
    hardlink,
    make_layer,
    opaque,
    push_image,
    push_index,
    rootfs_layer,
    symlink,
    whiteout,
)
from worker.registry import (
    AuthRefused,
    BadLayer,
    Credentials,
    ImageNotFound,
    PlatformNotFound,
    PulledImage,
    RegistryConfig,
    RegistryUnreachable,
    pull,
)
from worker.registry.manifest import this_platform

pytestmark = pytest.mark.skipif(not Path("/usr/bin/docker-registry").exists(), reason="needs Debian's docker-registry")

OURS = this_platform().architecture
OTHER = "s390x" if OURS != "s390x" else "amd64"
AS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    server = Registry(tmp_path_factory.mktemp("registry")).start()
    yield server
    server.stop()


def pull_into(reference: str, dest: Path, config: RegistryConfig | None = None) -> tuple[PulledImage, list[str]]:
    lines: list[str] = []
    pulled = asyncio.run(pull(reference, dest, config or RegistryConfig(cache_dir=dest.parent / "cache"), lines.append))
    return pulled, lines


def base_layer() -> Layer:
    return make_layer(
        directory("etc"),
        file("etc/hello.txt", "hello from layer 1\n"),
        file("etc/old.conf", "to be whited out\n"),
        directory("usr"),
        directory("usr/lib"),
        file("usr/lib/libbase.so", "base library"),
        symlink("lib", "usr/lib"),  # merged /usr, as in Debian
        directory("usr/bin"),
        file("usr/bin/tool", "#!/bin/sh\necho tool\n", mode=0o755, uid=1000, gid=1000),
        file("usr/bin/su-ish", "setuid", mode=0o4755),
        directory("var/cache", mode=0o755),
        file("var/cache/stale", "from layer 1"),
        directory("data", mode=0o750, uid=1000, gid=1000),
        directory("readonly", mode=0o555),
        file("readonly/inside", "written before its directory became read-only"),
    )


def top_layer() -> Layer:
    return make_layer(
        whiteout("etc/old.conf"),
        opaque("var/cache"),
        file("var/cache/fresh", "from layer 2"),
        file("lib/libtop.so", "top library"),  # through the lib -> usr/lib symlink
        hardlink("usr/bin/tool-again", "usr/bin/tool"),
        symlink("etc/greeting", "/etc/hello.txt"),
        file("etc/hello.txt", "hello from layer 2\n"),
        directory("app"),
        file("app/main.py", "print('hi')\n"),
    )


IMAGE_CONFIG = {
    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "GREETING=a=b"],
    "WorkingDir": "/app",
    "User": "1000:1000",
    "Entrypoint": ["/bin/sh", "-c"],
    "Cmd": ["python main.py"],
}


@pytest.fixture(scope="module")
def image(registry: Registry) -> Pushed:
    with httpx.Client() as client:
        return push_image(
            client,
            registry.url,
            "tests/app",
            "v1",
            [base_layer(), top_layer()],
            architecture=OURS,
            image_config=IMAGE_CONFIG,
        )


def test_pull_applies_layers_in_order_with_their_whiteouts(registry: Registry, image: Pushed, tmp_path: Path) -> None:
    root = tmp_path / "root"
    pulled, lines = pull_into(f"{registry.host}/tests/app:v1", root)

    assert (root / "etc/hello.txt").read_text() == "hello from layer 2\n"
    assert not (root / "etc/old.conf").exists()  # whited out by layer 2
    assert sorted(os.listdir(root / "var/cache")) == ["fresh"]  # layer 1's content hidden by the opaque marker
    assert os.readlink(root / "lib") == "usr/lib"
    assert (root / "usr/lib/libtop.so").read_text() == "top library"  # written through the symlink, inside
    assert (root / "usr/lib/libbase.so").read_text() == "base library"
    assert os.readlink(root / "etc/greeting") == "/etc/hello.txt"
    assert os.stat(root / "usr/bin/tool-again").st_ino == os.stat(root / "usr/bin/tool").st_ino
    assert stat.S_IMODE(os.stat(root / "usr/bin/tool").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(root / "usr/bin/su-ish").st_mode) == 0o4755
    assert stat.S_IMODE(os.stat(root / "data").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(root / "readonly").st_mode) == 0o555
    assert (root / "readonly/inside").exists()
    assert os.stat(root / "etc/hello.txt").st_mtime == 1_700_000_000
    if AS_ROOT:
        assert (os.stat(root / "usr/bin/tool").st_uid, os.stat(root / "usr/bin/tool").st_gid) == (1000, 1000)
        assert os.stat(root / "data").st_uid == 1000
        assert os.stat(root / "etc/hello.txt").st_uid == 0
    assert not [name for name in os.listdir(root) if name.startswith(".wh.")]
    assert not list(root.rglob(".wh.*"))

    assert pulled.digest == image.digest
    assert pulled.reference == f"{registry.host}/tests/app:v1"
    assert pulled.platform == f"linux/{OURS}"
    assert pulled.env == {"PATH": "/usr/local/bin:/usr/bin:/bin", "GREETING": "a=b"}
    assert (pulled.workdir, pulled.user) == ("/app", "1000:1000")
    assert (pulled.entrypoint, pulled.cmd) == (("/bin/sh", "-c"), ("python main.py",))
    assert len(pulled.layers) == 2 and pulled.root == root
    assert lines[0] == f"pulling {registry.host}/tests/app:v1 from {registry.host}"
    assert any(line.startswith("pulling layer 1/2 sha256:") and line.endswith("KiB)") for line in lines)
    assert [line.split(" ")[2] for line in lines if line.startswith("unpacking layer")] == ["1/2", "2/2"]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".root.partial")]


def test_second_pull_downloads_no_blob(registry: Registry, image: Pushed, tmp_path: Path) -> None:
    config = RegistryConfig(cache_dir=tmp_path / "cache")
    pull_into(f"{registry.host}/tests/app:v1", tmp_path / "first", config)
    served_before = len(registry.requests())

    _, lines = pull_into(f"{registry.host}/tests/app:v1", tmp_path / "second", config)

    again = registry.requests()[served_before:]
    assert not [request for request in again if "/blobs/" in request], again
    assert [request.split(" ")[1] for request in again if request.startswith("GET /v2/tests/")] == [
        "/v2/tests/app/manifests/v1"  # a tag can move, so it is asked again; nothing else is
    ]
    assert len([line for line in lines if line.endswith("already pulled")]) == 2
    assert not [line for line in lines if line.startswith("pulling layer")]
    assert (tmp_path / "second/etc/hello.txt").read_text() == "hello from layer 2\n"


def test_a_digest_reference_pulls_that_manifest_and_is_served_from_the_cache_offline(
    tmp_path: Path,
) -> None:
    registry = Registry(tmp_path / "own-registry").start()  # stopped halfway through
    try:
        with httpx.Client() as client:
            pushed = push_image(client, registry.url, "pinned/img", "v1", [base_layer()], architecture=OURS)
            push_image(client, registry.url, "pinned/img", "v1", [top_layer()], architecture=OURS)  # the tag moves
        config = RegistryConfig(cache_dir=tmp_path / "cache")
        pulled, _ = pull_into(f"{registry.host}/pinned/img@{pushed.digest}", tmp_path / "pinned", config)
        assert pulled.digest == pushed.digest
        assert (tmp_path / "pinned/etc/hello.txt").read_text() == "hello from layer 1\n"
        # and the tag and digest together: the digest wins, as in Docker
        pulled, _ = pull_into(f"{registry.host}/pinned/img:v1@{pushed.digest}", tmp_path / "both", config)
        assert pulled.digest == pushed.digest
    finally:
        registry.stop()
    pulled, lines = pull_into(f"{registry.host}/pinned/img@{pushed.digest}", tmp_path / "offline", config)
    assert (tmp_path / "offline/usr/lib/libbase.so").read_text() == "base library"
    assert len([line for line in lines if line.endswith("already pulled")]) == 1


def test_an_index_with_two_platforms_gives_ours(registry: Registry, tmp_path: Path) -> None:
    with httpx.Client() as client:
        theirs = push_image(
            client, registry.url, "multi/img", "theirs", [make_layer(file("platform", OTHER))], architecture=OTHER
        )
        ours = push_image(
            client,
            registry.url,
            "multi/img",
            "ours",
            [make_layer(file("platform", OURS))],
            architecture=OURS,
            docker_media_types=True,  # a Docker schema-2 manifest inside an OCI index
        )
        push_index(
            client,
            registry.url,
            "multi/img",
            "latest",
            [(theirs, {"os": "linux", "architecture": OTHER}), (ours, {"os": "linux", "architecture": OURS})],
        )
        push_index(client, registry.url, "multi/img", "not-ours", [(theirs, {"os": "linux", "architecture": OTHER})])

    pulled, lines = pull_into(f"{registry.host}/multi/img", tmp_path / "root")  # no tag: latest
    assert (tmp_path / "root/platform").read_text() == OURS
    assert pulled.digest == ours.digest
    assert f"{registry.host}/multi/img:latest has images for 2 platforms; using linux/{OURS}" in lines

    with pytest.raises(PlatformNotFound, match=f"has no image for linux/{OURS} \\(it has: linux/{OTHER}\\)"):
        pull_into(f"{registry.host}/multi/img:not-ours", tmp_path / "nothing")
    with pytest.raises(PlatformNotFound, match=f"is built for linux/{OTHER}; this worker is linux/{OURS}"):
        pull_into(f"{registry.host}/multi/img:theirs", tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_a_mirror_serves_docker_hub_references(registry: Registry, tmp_path: Path) -> None:
    with httpx.Client() as client:
        push_image(
            client, registry.url, "library/busybox", "1.36", [make_layer(file("bin/busybox", "bb"))], architecture=OURS
        )
    config = RegistryConfig.from_flags(mirror=registry.url, cache_dir=tmp_path / "cache")

    pulled, lines = pull_into("busybox:1.36", tmp_path / "root", config)

    assert pulled.reference == "docker.io/library/busybox:1.36"
    assert lines[0] == f"pulling docker.io/library/busybox:1.36 from {registry.host}"
    assert (tmp_path / "root/bin/busybox").read_text() == "bb"


def test_unknown_tags_and_repositories_say_which(registry: Registry, image: Pushed, tmp_path: Path) -> None:
    with pytest.raises(
        ImageNotFound, match=f"registry {registry.host} has no tag or digest v9 in tests/app .*; it has v1$"
    ):
        pull_into(f"{registry.host}/tests/app:v9", tmp_path / "root")
    with pytest.raises(ImageNotFound, match=f"registry {registry.host} has no repository tests/nothing"):
        pull_into(f"{registry.host}/tests/nothing:v1", tmp_path / "root")
    missing = "sha256:" + "0" * 64
    with pytest.raises(ImageNotFound, match=f"no tag or digest {missing}"):
        pull_into(f"{registry.host}/tests/app@{missing}", tmp_path / "root")
    assert not (tmp_path / "root").exists()


def test_an_unreachable_registry_is_named(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(RegistryUnreachable, match=f"cannot reach registry 127.0.0.1:{port}"):
        pull_into(f"127.0.0.1:{port}/some/img:v1", tmp_path / "root")


def test_a_hostile_layer_writes_nothing_outside_the_destination(registry: Registry, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with httpx.Client() as client:
        push_image(
            client,
            registry.url,
            "hostile/escape",
            "dotdot",
            [make_layer(file("fine", "ok"), file("../../outside/dotdot", "escaped"))],
            architecture=OURS,
        )
        push_image(
            client,
            registry.url,
            "hostile/escape",
            "symlinks",
            [
                make_layer(
                    symlink("relative-out", "../../../../../../../../" + str(outside).lstrip("/")),
                    symlink("absolute-out", str(outside)),
                ),
                make_layer(file("relative-out/pwned", "1"), file("absolute-out/pwned", "2")),
            ],
            architecture=OURS,
        )

    with pytest.raises(BadLayer, match=r"member '\.\./\.\./outside/dotdot' points outside the image"):
        pull_into(f"{registry.host}/hostile/escape:dotdot", tmp_path / "dotdot")
    assert not (tmp_path / "dotdot").exists()
    assert not [name for name in os.listdir(tmp_path) if ".partial" in name]

    pull_into(f"{registry.host}/hostile/escape:symlinks", tmp_path / "symlinks")
    assert os.listdir(outside) == []
    # Each symlink is followed as inside a chroot: both land on the image's own copy of that path.
    assert (tmp_path / "symlinks" / str(outside).lstrip("/") / "pwned").read_text() == "2"


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, TokenServer]]:
    work = tmp_path_factory.mktemp("token-registry")
    tokens = TokenServer(work, users={"alice": "wonderland"})
    server = Registry(work, auth=tokens.registry_auth()).start()
    with httpx.Client() as client:
        client.headers["Authorization"] = "Bearer " + tokens.token("alice", "repository:private/app:pull,push")
        push_image(client, server.url, "private/app", "v1", [make_layer(file("secret.txt", "s3"))], architecture=OURS)
    yield server, tokens
    server.stop()
    tokens.close()


def test_token_auth_pulls_with_a_token_from_the_realm(
    token_registry: tuple[Registry, TokenServer], tmp_path: Path
) -> None:
    server, tokens = token_registry
    tokens.requests.clear()
    config = RegistryConfig.from_flags(credentials=[f"{server.host}=alice:wonderland"], cache_dir=tmp_path / "cache")

    pull_into(f"{server.host}/private/app:v1", tmp_path / "root", config)

    assert (tmp_path / "root/secret.txt").read_text() == "s3"
    assert tokens.requests == [
        {"scope": "repository:private/app:pull", "service": tokens.service, "user": "alice", "answer": "200"}
    ]
    assert "GET /v2/private/app/manifests/v1 200" in server.requests()


def test_token_auth_refusals_say_so(token_registry: tuple[Registry, TokenServer], tmp_path: Path) -> None:
    server, _ = token_registry
    wrong = RegistryConfig(credentials={server.host: Credentials("alice", "guess")})
    with pytest.raises(
        AuthRefused, match=f"token server of registry {server.host} .* refused the credentials of 'alice'"
    ):
        pull_into(f"{server.host}/private/app:v1", tmp_path / "root", wrong)
    with pytest.raises(AuthRefused, match=f"registry {server.host} refused to let us pull private/app anonymously"):
        pull_into(f"{server.host}/private/app:v1", tmp_path / "root", RegistryConfig())
    assert not (tmp_path / "root").exists()


def _bcrypt_htpasswd(user: str, password: str) -> str | None:
    """An htpasswd line in the bcrypt form docker-registry requires, from libc's crypt(3)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            return None
    method = getattr(crypt, "METHOD_BLOWFISH", None)
    if method is None or method not in crypt.methods:
        return None
    hashed = crypt.crypt(password, crypt.mksalt(method, rounds=16))  # cost 4: the registry checks it on every request
    return f"{user}:{hashed}"


def test_basic_auth_with_configured_credentials(tmp_path: Path) -> None:
    line = _bcrypt_htpasswd("bob", "builder")
    if line is None:
        pytest.skip("no bcrypt in this Python's crypt module to write an htpasswd file")
    (tmp_path / "htpasswd").write_text(line + "\n")
    server = Registry(tmp_path, auth={"htpasswd": {"realm": "stoker-test", "path": str(tmp_path / "htpasswd")}}).start()
    try:
        with httpx.Client(auth=("bob", "builder")) as client:
            push_image(client, server.url, "team/tool", "v1", [make_layer(file("tool", "t"))], architecture=OURS)

        auth_file = tmp_path / "docker-config.json"
        auth_file.write_text(json.dumps({"auths": {server.host: {"auth": "Ym9iOmJ1aWxkZXI="}}}))  # bob:builder
        config = RegistryConfig.from_flags(auth_file=auth_file, cache_dir=tmp_path / "cache")
        pull_into(f"{server.host}/team/tool:v1", tmp_path / "root", config)
        assert (tmp_path / "root/tool").read_text() == "t"

        with pytest.raises(AuthRefused, match=f"registry {server.host} wants a user name and password for team/tool"):
            pull_into(f"{server.host}/team/tool:v1", tmp_path / "anonymous", RegistryConfig())
        wrong = RegistryConfig(credentials={server.host: Credentials("bob", "plumber")})
        with pytest.raises(AuthRefused, match=f"registry {server.host} refused to let us pull team/tool as 'bob'"):
            pull_into(f"{server.host}/team/tool:v1", tmp_path / "wrong", wrong)
    finally:
        server.stop()
        shutil.rmtree(tmp_path / "storage", ignore_errors=True)


@pytest.mark.skipif(not AS_ROOT, reason="chroot needs root")
def test_a_debian_root_filesystem_pulls_and_its_python_runs(
    registry: Registry, debian_rootfs: Path, tmp_path: Path
) -> None:
    base = tmp_path / "base.tar"
    base_layer = rootfs_layer(debian_rootfs, base)
    top = make_layer(whiteout("etc/debian_version"), file("usr/local/bin/hello.py", "print('hello from the image')\n"))
    with httpx.Client(timeout=120) as client:
        push_image(
            client,
            registry.url,
            "debian/python",
            "bookworm",
            [base_layer, top],
            architecture=OURS,
            image_config={"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "WorkingDir": "/"},
        )
    root = tmp_path / "root"

    pulled, lines = pull_into(f"{registry.host}/debian/python:bookworm", root)

    progress = [line.rsplit(": ", 1)[1] for line in lines if line.startswith("layer 1/2 sha256:") and " of " in line]
    assert [share.split(" of ")[1] for share in progress] == [f"{base.stat().st_size / (1 << 20):.1f} MiB"] * 3
    assert os.readlink(root / "bin") == "usr/bin"  # merged /usr kept as symlinks
    assert not (root / "etc/debian_version").exists()
    assert stat.S_IMODE(os.stat(root / "usr/bin/su").st_mode) & stat.S_ISUID
    ran = subprocess.run(
        [shutil.which("chroot") or "/usr/sbin/chroot", str(root), "/usr/bin/python3", "/usr/local/bin/hello.py"],
        env={"PATH": pulled.env["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (ran.returncode, ran.stdout) == (0, "hello from the image\n"), ran.stderr


def test_a_registry_serving_the_wrong_bytes_is_caught(registry: Registry, tmp_path: Path) -> None:
    layer = make_layer(file("payload", "the real content"))
    with httpx.Client() as client:
        push_image(client, registry.url, "corrupt/img", "v1", [layer], architecture=OURS)
    # Damage the registry's own copy of the layer, as a broken disk or a lying mirror would.
    stored = registry.work / "storage/docker/registry/v2/blobs/sha256" / layer.digest[7:9] / layer.digest[7:] / "data"
    original = stored.read_bytes()
    config = RegistryConfig(cache_dir=tmp_path / "cache")
    try:
        stored.write_bytes(bytes(len(original)))
        with pytest.raises(
            BadLayer, match=f"registry {registry.host} served blob {layer.digest} of layer 1 of .* with content sha256:"
        ):
            pull_into(f"{registry.host}/corrupt/img:v1", tmp_path / "root", config)
        stored.write_bytes(original + bytes(1 << 20))
        with pytest.raises(BadLayer, match=f"sent more than {len(original)} bytes for {layer.digest}"):
            pull_into(f"{registry.host}/corrupt/img:v1", tmp_path / "root", config)
        assert not (tmp_path / "root").exists()
        assert not (tmp_path / "cache/sha256" / layer.digest[7:]).exists()
        assert not [name for name in os.listdir(tmp_path / "cache/sha256") if ".partial" in name]
    finally:
        stored.write_bytes(original)
    pull_into(f"{registry.host}/corrupt/img:v1", tmp_path / "root", config)  # mended: the cache held nothing bad
    assert (tmp_path / "root/payload").read_text() == "the real content"


def test_a_cancelled_pull_leaves_nothing_behind(registry: Registry, image: Pushed, tmp_path: Path) -> None:
    async def cancel_while_unpacking() -> None:
        unpacking = asyncio.Event()

        def output(line: str) -> None:
            if line.startswith("unpacking layer 1/2"):
                unpacking.set()

        config = RegistryConfig(cache_dir=tmp_path / "cache")
        task = asyncio.create_task(pull(f"{registry.host}/tests/app:v1", tmp_path / "root", config, output))
        await asyncio.wait_for(unpacking.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_while_unpacking())
    assert sorted(os.listdir(tmp_path)) == ["cache"]
