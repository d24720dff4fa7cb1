"""@app.function(block_network=True): on the wire, served by a default worker (each container on
a network of its own, which the worker can cut: tests/test_sandbox_network.py shows it reaching
nothing), and refused by a worker that cannot keep its containers off the network (its container
network off: containers on the host's network), saying so, never run networked."""

from __future__ import annotations

from pathlib import Path

from client.app import App
from tests.conftest import Cluster, running_cluster


def test_block_network_travels_in_the_function_spec() -> None:
    app = App("spec")

    @app.function(block_network=True)
    def offline() -> None: ...

    @app.function()
    def online() -> None: ...

    assert offline.to_proto().block_network
    assert not online.to_proto().block_network


def test_a_default_worker_serves_block_network_functions(cluster: Cluster) -> None:
    url = cluster.deploy("blocked_network.py")["offline"]
    assert cluster.get(url).json() == {"network": "none"}


def test_a_worker_without_container_networks_refuses_block_network_saying_why(tmp_path: Path) -> None:
    with running_cluster(tmp_path, STOKER_CONTAINER_NETWORK="0") as cluster:
        url = cluster.deploy("blocked_network.py")["offline"]
        response = cluster.get(url)
        assert response.status_code >= 500
        assert "block_network=True is not supported yet on this worker" in response.text
        assert cluster.warm_containers("offline") == []
