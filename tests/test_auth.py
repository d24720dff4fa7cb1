"""Proxy auth at the edge, and the control plane's own authentication."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import grpc
import pytest

from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from tests.conftest import Cluster, descendants, stoker_command, wait_until


def _create_token(cluster: Cluster) -> tuple[str, str]:
    result = cluster.stoker("token", "create")
    assert result.returncode == 0, result.stderr
    key = re.search(r"Token key: (wk-\S+)", result.stdout)
    secret = re.search(r"Token secret: (ws-\S+)", result.stdout)
    assert key and secret, result.stdout
    return key.group(1), secret.group(1)


def _containers(cluster: Cluster, function: str) -> int:
    return sum(1 for c in cluster.status().containers if c.function == function)


def test_proxy_auth_refuses_without_touching_a_container(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("protected.py")["protected"]
    key, secret = _create_token(shared_cluster)

    missing = shared_cluster.get(url)
    assert missing.status_code == 401
    assert "Modal-Key and Modal-Secret" in missing.text
    wrong = shared_cluster.get(url, headers={"Modal-Key": key, "Modal-Secret": "ws-wrong"})
    assert wrong.status_code == 401
    assert "secret does not match" in wrong.text
    assert secret not in wrong.text
    unknown = shared_cluster.get(url, headers={"Modal-Key": "wk-nope", "Modal-Secret": secret})
    assert unknown.status_code == 401
    assert "no token has the key" in unknown.text
    assert _containers(shared_cluster, "protected") == 0  # nothing was placed or started

    ok = shared_cluster.get(url, headers={"Modal-Key": key, "Modal-Secret": secret})
    assert ok.status_code == 200
    assert ok.json() == "authenticated!"
    bearer = shared_cluster.get(url, headers={"Authorization": f"Bearer {key}.{secret}"})
    assert bearer.status_code == 200


def test_the_app_never_sees_the_credentials(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("protected.py")["headers"]
    key, secret = _create_token(shared_cluster)
    seen = shared_cluster.get(url, headers={"Modal-Key": key, "Modal-Secret": secret, "X-Other": "1"})
    assert seen.status_code == 200
    assert "x-other" in seen.text.split(",")
    assert "modal-key" not in seen.text and "modal-secret" not in seen.text
    via_bearer = shared_cluster.get(url, headers={"Authorization": f"Bearer {key}.{secret}"})
    assert "authorization" not in via_bearer.text.split(",")


def test_a_revoked_token_stops_working_within_a_second(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("protected.py")["protected"]
    key, secret = _create_token(shared_cluster)
    creds = {"Modal-Key": key, "Modal-Secret": secret}
    assert shared_cluster.get(url, headers=creds).status_code == 200
    listed = shared_cluster.stoker("token", "list").stdout
    assert key in listed and secret not in listed
    revoked = shared_cluster.stoker("token", "revoke", key)
    assert revoked.returncode == 0, revoked.stderr
    assert wait_until(lambda: shared_cluster.get(url, headers=creds).status_code == 401, timeout=1.0)
    assert shared_cluster.stoker("token", "revoke", key).returncode == 1


def test_endpoints_without_proxy_auth_stay_open(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("seed_query.py")["square"]
    assert shared_cluster.get(url, "/?x=5").json() == {"square": 25}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [((), "needs a workspace token"), ((("authorization", "Bearer wt-forged"),), "not valid on this cluster")],
)
def test_the_control_plane_refuses_calls_without_a_valid_token(
    shared_cluster: Cluster, metadata: tuple[tuple[str, str], ...], message: str
) -> None:
    with grpc.insecure_channel(shared_cluster.scheduler) as channel:
        stub = pb_grpc.SchedulerStub(channel)
        for call in (
            lambda: stub.ListApps(pb.ListAppsRequest(), timeout=10, metadata=metadata),
            lambda: list(stub.Deploy(pb.DeployRequest(app=pb.AppDefinition(name="x")), timeout=10, metadata=metadata)),
            lambda: stub.CreateToken(pb.CreateTokenRequest(), timeout=10, metadata=metadata),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                call()
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert message in (caught.value.details() or "")


def test_the_cli_without_a_token_says_how_to_get_one(shared_cluster: Cluster) -> None:
    env = {**shared_cluster.env, "HOME": "/nonexistent", "STOKER_TOKEN": ""}
    result = subprocess.run(stoker_command("app", "list"), env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "workspace token" in result.stderr
    assert "stoker up" in result.stderr


def test_daemons_without_the_cluster_secret_are_refused(shared_cluster: Cluster) -> None:
    forged = (("x-stoker-cluster-secret", "cs-forged"),)
    with grpc.insecure_channel(shared_cluster.scheduler) as channel:
        stub = pb_grpc.SchedulerStub(channel)
        register = pb.WorkerMessage(register=pb.WorkerRegister(worker_id="intruder"))
        hello = pb.IngressMessages(messages=[pb.IngressMessage(hello=pb.IngressHello(ingress_id="intruder"))])
        for call in (
            lambda: list(stub.WorkerConnect(iter([register]), timeout=10, metadata=forged)),
            lambda: list(stub.IngressConnect(iter([hello]), timeout=10)),
            # A workspace token is not enough to act as a daemon, either.
            lambda: list(stub.IngressConnect(iter([hello]), timeout=10, metadata=shared_cluster.metadata)),
            lambda: stub.GetBundle(pb.GetBundleRequest(bundle_hash="x"), timeout=10),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                call()
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "intruder" not in {w.worker_id for w in shared_cluster.status().workers}


def test_secrets_never_reach_logs_or_listings(shared_cluster: Cluster) -> None:
    url = shared_cluster.deploy("protected.py")["protected"]
    key, secret = _create_token(shared_cluster)
    shared_cluster.get(url, headers={"Modal-Key": key, "Modal-Secret": secret})
    shared_cluster.get(url, headers={"Modal-Key": key, "Modal-Secret": secret + "x"})
    assert shared_cluster.output is not None
    logs = shared_cluster.output.text()  # every daemon's and container's output
    assert key in logs  # the key is logged when created: it is not a secret
    assert secret not in logs
    assert shared_cluster.token not in logs
    cluster_secret = (shared_cluster.state_dir / "cluster-secret").read_text().strip()
    assert cluster_secret not in logs
    for listing in (("app", "list"), ("token", "list"), ("status",)):
        out = shared_cluster.stoker(*listing).stdout
        assert secret not in out and shared_cluster.token not in out and cluster_secret not in out
    # Secrets travel to the daemons in their environment, not on command lines others can read.
    assert shared_cluster.process is not None
    for pid in descendants(shared_cluster.process.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert cluster_secret.encode() not in argv
