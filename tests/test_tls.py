"""The scheduler's gRPC over TLS: every daemon and the CLI trust the CA named by STOKER_TLS_CA."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from tests.conftest import Cluster, running_cluster

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_cluster(tmp_path: Path) -> Iterator[Cluster]:
    cert, key = _self_signed(tmp_path)
    env = {"STOKER_TLS_CERT": str(cert), "STOKER_TLS_KEY": str(key), "STOKER_TLS_CA": str(cert)}
    with running_cluster(tmp_path, **env) as c:
        yield c


def test_a_cluster_runs_with_grpc_over_tls(tls_cluster: Cluster) -> None:
    url = tls_cluster.deploy("seed_query.py")["square"]  # the CLI over TLS
    assert tls_cluster.get(url, "/?x=6").json() == {"square": 36}  # worker and ingress over TLS
    # A plaintext client gets nowhere.
    with grpc.insecure_channel(tls_cluster.scheduler) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            pb_grpc.SchedulerStub(channel).ListApps(pb.ListAppsRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.fixture
def https_cluster(tmp_path: Path) -> Iterator[Cluster]:
    cert, key = _self_signed(tmp_path)
    with running_cluster(tmp_path, STOKER_INGRESS_TLS_CERT=str(cert), STOKER_INGRESS_TLS_KEY=str(key)) as c:
        yield c


def test_the_ingress_serves_https(https_cluster: Cluster, tmp_path: Path) -> None:
    url = https_cluster.deploy("seed_query.py")["square"]
    assert url.startswith("https://")
    host = url.removeprefix("https://")
    with httpx.Client(verify=False, timeout=30) as client:
        reply = client.get(f"https://127.0.0.1:{https_cluster.http_port}/?x=7", headers={"host": host})
    assert reply.json() == {"square": 49}
