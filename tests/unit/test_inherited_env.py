"""What the worker's children inherit of its environment: what an interpreter needs, nothing of
the cluster."""

from __future__ import annotations

from worker.inherited_env import inherited_environment

WORKER_ENV = {
    "PATH": "/usr/bin",
    "HOME": "/home/op",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONPATH": "/opt/lib",
    "PYTHONUNBUFFERED": "1",
    "GRPC_EXPERIMENTS": "event_engine_client",
    "SSL_CERT_FILE": "/etc/ssl/ca.pem",
    "STOKER_TLS_CA": "/etc/stoker/ca.pem",
    "STOKER_CLUSTER_SECRET": "cs-secret",
    "STOKER_TOKEN": "wt-token",
    "STOKER_SCHEDULER": "10.0.0.1:7700",
    "STOKER_WORK_DIR": "/var/lib/stoker-worker",
    "AWS_SECRET_ACCESS_KEY": "operator-only",
    "XDG_RUNTIME_DIR": "/run/user/1000",
}


def test_only_the_allow_list_is_inherited() -> None:
    assert inherited_environment(WORKER_ENV) == {
        "PATH": "/usr/bin",
        "HOME": "/home/op",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": "/opt/lib",
        "PYTHONUNBUFFERED": "1",
        "GRPC_EXPERIMENTS": "event_engine_client",
        "SSL_CERT_FILE": "/etc/ssl/ca.pem",
        "STOKER_TLS_CA": "/etc/stoker/ca.pem",  # the only STOKER_* one: containers' calls use TLS too
    }
