"""A real Docker registry on loopback for the registry-pull tests: Debian's `docker-registry` as a
process, images the tests build themselves (layer tarballs, a config, a manifest) pushed with the
v2 upload API, and a small token server that signs JWTs the registry trusts."""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import http.server
import io
import json
import re
import secrets
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.conftest import stop_process, wait_until

REGISTRY_BINARY = "/usr/bin/docker-registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
PLAIN_LAYER = "application/vnd.oci.image.layer.v1.tar"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- layers -------------------------------------------------------------------------------------

Member = tuple[tarfile.TarInfo, bytes | None]


def file(name: str, content: bytes | str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Member:
    data = content.encode() if isinstance(content, str) else content
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid, info.mtime = len(data), mode, uid, gid, 1_700_000_000
    return info, data


def directory(name: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, mode, uid, gid, 1_700_000_000
    return info, None


def symlink(name: str, target: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
    return info, None


def hardlink(name: str, target: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info, None


def char_device(name: str, major: int, minor: int) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor, info.mode = tarfile.CHRTYPE, major, minor, 0o666
    return info, None


def whiteout(path: str) -> Member:
    parent, _, name = path.rpartition("/")
    return file(f"{parent}/.wh.{name}" if parent else f".wh.{name}", b"")


def opaque(directory_path: str) -> Member:
    return file(f"{directory_path}/.wh..wh..opq", b"")


@dataclass(frozen=True)
class Layer:
    data: bytes  # as pushed (gzip unless plain)
    diff_id: str  # digest of the uncompressed tar
    media_type: str

    @property
    def digest(self) -> str:
        return sha256(self.data)


def make_layer(*members: Member, compress: bool = True) -> Layer:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    tar = buffer.getvalue()
    if not compress:
        return Layer(tar, sha256(tar), PLAIN_LAYER)
    return Layer(gzip.compress(tar, mtime=0), sha256(tar), GZIP_LAYER)


# --- pushing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pushed:
    digest: str
    size: int
    media_type: str


def push_blob(client: httpx.Client, base: str, repository: str, data: bytes) -> str:
    digest = sha256(data)
    started = client.post(f"{base}/v2/{repository}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = urljoin(base, started.headers["Location"])
    location += ("&" if "?" in location else "?") + f"digest={digest}"  # beside the registry's own _state
    done = client.put(location, content=data, headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text
    return digest


def push_manifest(client: httpx.Client, base: str, repository: str, tag: str, body: bytes, media_type: str) -> Pushed:
    answer = client.put(f"{base}/v2/{repository}/manifests/{tag}", content=body, headers={"Content-Type": media_type})
    assert answer.status_code == 201, answer.text
    assert answer.headers["Docker-Content-Digest"] == sha256(body)
    return Pushed(sha256(body), len(body), media_type)


def push_image(
    client: httpx.Client,
    base: str,
    repository: str,
    tag: str,
    layers: list[Layer],
    *,
    architecture: str,
    image_config: dict[str, Any] | None = None,
    docker_media_types: bool = False,
) -> Pushed:
    """Layers, a config and a manifest pushed as `repository:tag`; the manifest's digest and size."""
    config = {
        "architecture": architecture,
        "os": "linux",
        "config": image_config or {},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
    }
    config_bytes = json.dumps(config).encode()
    push_blob(client, base, repository, config_bytes)
    for layer in layers:
        push_blob(client, base, repository, layer.data)
    manifest_type = DOCKER_MANIFEST if docker_media_types else OCI_MANIFEST
    layer_type = "application/vnd.docker.image.rootfs.diff.tar.gzip" if docker_media_types else None
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {
            "mediaType": DOCKER_CONFIG if docker_media_types else OCI_CONFIG,
            "digest": sha256(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {"mediaType": layer_type or layer.media_type, "digest": layer.digest, "size": len(layer.data)}
            for layer in layers
        ],
    }
    return push_manifest(client, base, repository, tag, json.dumps(manifest).encode(), manifest_type)


def push_index(
    client: httpx.Client, base: str, repository: str, tag: str, entries: list[tuple[Pushed, dict[str, str]]]
) -> Pushed:
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": pushed.media_type, "digest": pushed.digest, "size": pushed.size, "platform": platform}
            for pushed, platform in entries
        ],
    }
    return push_manifest(client, base, repository, tag, json.dumps(index).encode(), OCI_INDEX)


def rootfs_layer(rootfs: Path, tar_path: Path) -> Layer:
    """A root filesystem as one plain tar layer, as `docker save` of a base image gives; without
    its docs, manuals, translations and perl modules: a third less to push, nothing python needs."""
    excluded = [f"--exclude=./usr/share/{name}" for name in ("doc", "man", "locale", "perl")]
    subprocess.run(
        ["tar", "-C", str(rootfs), "--numeric-owner", *excluded, "-cf", str(tar_path), "."], check=True, timeout=120
    )
    data = tar_path.read_bytes()
    return Layer(data, sha256(data), "application/vnd.oci.image.layer.v1.tar")


# --- the registry process -----------------------------------------------------------------------


class Registry:
    """docker-registry serving from a directory of its own, on a free loopback port."""

    def __init__(self, work: Path, auth: dict[str, Any] | None = None) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.log_path = work / "registry.log"
        config: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": "info"},
            "storage": {"filesystem": {"rootdirectory": str(work / "storage")}},
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
        }
        if auth:
            config["auth"] = auth
        (work / "config.json").write_text(json.dumps(config))
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Registry:
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(self.work / "config.json")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        log.close()

        def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"docker-registry exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/v2/", timeout=1).status_code in (200, 401)
            except httpx.HTTPError:
                return False

        assert wait_until(answers, 20), f"docker-registry did not answer:\n{self.log_path.read_text()[-3000:]}"
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 15)
            self.process = None

    def requests(self) -> list[str]:
        """'METHOD uri status' of each request served so far, from the registry's access log."""
        found = []
        for line in self.log_path.read_text().splitlines():
            if 'msg="response completed"' in line:
                method, uri, status = (
                    _log_field(line, name) for name in ("request.method", "request.uri", "response.status")
                )
                found.append(f"{method} {uri} {status}")
        return found


def _log_field(line: str, name: str) -> str:
    match = re.search(rf' http\.{re.escape(name)}=("[^"]*"|\S+)', line)
    return match[1].strip('"') if match else ""


# --- a token server -----------------------------------------------------------------------------


@dataclass
class TokenServer:
    """Hands out registry tokens (RS256 JWTs, the signing certificate in their x5c header) to
    `users`; anonymous callers get a token that grants nothing, as Docker Hub's does for a
    private repository. `requests` records what each caller asked."""

    work: Path
    users: dict[str, str]
    service: str = "stoker-test-registry"
    issuer: str = "stoker-test-issuer"
    requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stoker test token issuer")])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = self.work / "token-root.pem"
        self.bundle.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, name="token-server", daemon=True)
        self.thread.start()

    def registry_auth(self) -> dict[str, Any]:
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.bundle),
            }
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def token(self, user: str, scope: str) -> str:
        access = []
        if user and scope:
            kind, name, actions = scope.split(":", 2)
            access = [{"type": kind, "name": name, "actions": actions.split(",")}]
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": self.issuer,
            "sub": user,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def _handler(self) -> Callable[..., http.server.BaseHTTPRequestHandler]:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
                user = ""
                authorization = self.headers.get("Authorization", "")
                if authorization.startswith("Basic "):
                    user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
                    if outer.users.get(user) != password:
                        outer.requests.append({**query, "user": user, "answer": "401"})
                        self._answer(401, {"details": "bad credentials"})
                        return
                outer.requests.append({**query, "user": user, "answer": "200"})
                # Answered as `access_token`, the OAuth2 spelling: the client must read either.
                self._answer(200, {"access_token": outer.token(user, query.get("scope", "")), "expires_in": 300})

            def _answer(self, status: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
