"""Bad input is refused with a clear error and changes nothing."""

from __future__ import annotations

import io
import stat
import zipfile

import grpc
import pytest

from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from tests.conftest import Cluster


def _bundle(*members: tuple[str, bytes], link: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _deploy(cluster: Cluster, app: pb.AppDefinition) -> grpc.RpcError:
    with grpc.insecure_channel(cluster.scheduler) as channel:
        stub = pb_grpc.SchedulerStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.Deploy(pb.DeployRequest(app=app), timeout=30, metadata=cluster.metadata))
    return caught.value


def _app(bundle: bytes, name: str = "hostile", label: str = "") -> pb.AppDefinition:
    web = pb.WebEndpoint(kind="fastapi_endpoint", method="GET", label=label)
    return pb.AppDefinition(name=name, entry="app.py", bundle=bundle, functions=[pb.FunctionSpec(name="f", web=web)])


@pytest.mark.parametrize(
    ("bundle", "says"),
    [
        (_bundle(("app.py", b""), ("../escape.py", b"x")), "escapes its folder"),
        (_bundle(("app.py", b""), ("/etc/cron.d/x", b"x")), "escapes its folder"),
        (_bundle(("app.py", b""), link="evil"), "symbolic link"),
        (b"not a zip at all", "not a valid zip"),
    ],
)
def test_a_bundle_that_escapes_its_folder_is_refused(shared_cluster: Cluster, bundle: bytes, says: str) -> None:
    error = _deploy(shared_cluster, _app(bundle))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in (error.details() or "")
    assert "hostile" not in shared_cluster.stoker("app", "list").stdout


@pytest.mark.parametrize(
    ("name", "label", "says"),
    [
        ("bad name!", "", "app name 'bad name!' is not valid"),
        ("fine", "Not_A_Label", "not a valid DNS label"),
        ("fine", "-dash", "not a valid DNS label"),
    ],
)
def test_names_that_are_not_dns_labels_are_refused_with_the_rule(
    shared_cluster: Cluster, name: str, label: str, says: str
) -> None:
    error = _deploy(shared_cluster, _app(_bundle(("app.py", b"")), name=name, label=label))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert says in (error.details() or "")


def test_malformed_http_gets_400(shared_cluster: Cluster) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", shared_cluster.http_port), timeout=10) as s:
        s.sendall(b"GARBAGE\x00\x01 / NOT-HTTP\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400")
