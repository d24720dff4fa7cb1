"""Sandboxed containers on networks of their own (the default: --sandbox-network private, on the
worker's container network bridge): each container's network namespace has an address of its own, so
two replicas of one @web_server serve port 8000 side by side; the ingress reaches each directly;
a container reaches the scheduler (.remote()) and the outside world, not the host's services;
block_network=True keeps one from reaching anything while it still serves.

Real namespaces, bridges and firewall rules: root, as CI runs. The "outside world" is a
test-made namespace behind a veth of the host's (tests/test_container_network.py's Outside).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cluster, running_cluster, stoker_command
from tests.netns.dns_server import NameServer
from tests.test_container_network import Outside, free_subnet

RUN = secrets.token_hex(3)  # in the bridge's name: parallel runs never share one

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("ip", "nft", "iptables", "nsenter")),
    reason="needs root, iproute2, nftables, iptables and util-linux",
)


@pytest.fixture(scope="module")
def subnet() -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(free_subnet())


@pytest.fixture(scope="module", params=[True, False], ids=["forked", "fresh"])
def private_cluster(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    debian_rootfs: Path,
    subnet: ipaddress.IPv4Network,
) -> Iterator[Cluster]:
    env = {
        "STOKER_SANDBOX_ROOTFS": str(debian_rootfs),
        "STOKER_CONTAINER_SUBNET": str(subnet),  # the network is on by default; its subnet is checked below
        "STOKER_CONTAINER_BRIDGE": f"stkn{RUN}{int(request.param)}",
        **({} if request.param else {"STOKER_WORKER_FORK": "0"}),
    }
    with running_cluster(tmp_path_factory.mktemp("private"), **env) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def urls(private_cluster: Cluster) -> dict[str, str]:
    return private_cluster.deploy("sandbox_network.py")


@pytest.fixture
def outside() -> Iterator[Outside]:
    world = Outside()
    yield world
    world.close()


def _probe(cluster: Cluster, url: str, host: str = "", port: int = 0) -> dict[str, Any]:
    response = cluster.get(url, params={"host": host, "port": port} if host else None)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_two_web_servers_on_port_8000_side_by_side_both_answer_through_the_ingress(
    private_cluster: Cluster, urls: dict[str, str], subnet: ipaddress.IPv4Network
) -> None:
    answers = {}
    for name in ("replica_a", "replica_b"):
        response = private_cluster.get(urls[name])
        assert response.status_code == 200, response.text
        hostname, address = response.text.split()
        answers[name] = (hostname, ipaddress.IPv4Address(address))
    (host_a, address_a), (host_b, address_b) = answers["replica_a"], answers["replica_b"]
    assert host_a != host_b and address_a != address_b, answers
    assert address_a in subnet and address_b in subnet, answers
    # Both are up at once, on one worker, each serving its own port 8000.
    on_worker = {c.container_id: c.worker_id for c in private_cluster.status().containers}
    assert {host_a, host_b} <= set(on_worker) and on_worker[host_a] == on_worker[host_b]
    assert private_cluster.get(urls["replica_a"]).text.split()[0] == host_a


def test_a_containers_own_address_is_on_the_bridge_not_the_hosts(
    private_cluster: Cluster, urls: dict[str, str], subnet: ipaddress.IPv4Network
) -> None:
    found = _probe(private_cluster, urls["online"])
    own = ipaddress.IPv4Address(found["address"])
    assert own in subnet and own != subnet.network_address + 1  # not the gateway (the host's end)
    host_addresses = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    assert f" {own}/" not in host_addresses


def test_remote_from_inside_a_sandbox_reaches_another_function(private_cluster: Cluster, urls: dict[str, str]) -> None:
    response = private_cluster.get(urls["caller"], params={"x": 21})
    assert response.status_code == 200, response.text
    assert response.json() == {"doubled": 42}


def test_block_network_serves_but_reaches_nothing_while_a_normal_container_does(
    private_cluster: Cluster, urls: dict[str, str], outside: Outside
) -> None:
    online = _probe(private_cluster, urls["online"], str(outside.address), 9000)
    # Out through NAT: the outside world sees the host's address, not the container's.
    assert online["connect"] == f"ok outside {outside.host_address}", online
    offline = _probe(private_cluster, urls["offline"], str(outside.address), 9000)
    assert offline["connect"].startswith("failed"), offline
    assert private_cluster.warm_containers("offline"), "the blocked container serves all the same"


def test_a_container_reaches_none_of_the_hosts_own_services(
    private_cluster: Cluster, urls: dict[str, str], subnet: ipaddress.IPv4Network
) -> None:
    # A service of the host's on every address, neither the scheduler nor the ingress.
    with socket.create_server(("0.0.0.0", 0)) as service:
        port = service.getsockname()[1]
        assert _probe(private_cluster, urls["online"], "127.0.0.1", port)["connect"].startswith("failed")
        gateway = str(subnet.network_address + 1)  # the host's end of the bridge
        assert _probe(private_cluster, urls["online"], gateway, port)["connect"].startswith("failed")
        host_address = next(a for a in _host_addresses() if a not in subnet and not a.is_loopback)
        assert _probe(private_cluster, urls["online"], str(host_address), port)["connect"].startswith("failed")


def _host_addresses() -> list[ipaddress.IPv4Address]:
    listing = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    return [ipaddress.IPv4Interface(word).ip for word in listing.split() if "/" in word]


def test_a_host_whose_name_server_is_on_loopback_resolves_names_for_its_containers(
    tmp_path: Path, debian_rootfs: Path
) -> None:
    # The host's resolver on loopback only, as systemd-resolved's or Docker's: containers ask their
    # gateway, which forwards to it.
    server = NameServer("127.0.0.2", "192.0.2.77")
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text("nameserver 127.0.0.2\noptions timeout:2 attempts:2\n")
    env = {"STOKER_SANDBOX_ROOTFS": str(debian_rootfs), "STOKER_CONTAINER_RESOLV_CONF": str(resolv_conf)}
    try:
        (tmp_path / "cluster").mkdir()
        with running_cluster(tmp_path / "cluster", **env) as cluster:
            url = cluster.deploy("sandbox_network.py")["resolve"]
            found = cluster.get(url, params={"name": "model-store.stoker.test"}).json()
            assert found == {"address": "192.0.2.77"}, found
            assert "model-store.stoker.test" in server.queries
    finally:
        server.close()


def test_a_container_of_a_memory_snapshot_has_its_own_address_too(
    request: pytest.FixtureRequest, private_cluster: Cluster, urls: dict[str, str], subnet: ipaddress.IPv4Network
) -> None:
    found = _probe(private_cluster, urls["Snapped.info"])
    assert ipaddress.IPv4Address(found["address"]) in subnet, found
    if request.node.callspec.params["private_cluster"]:
        # Its snap=True hook ran in the snapshot's template, on the host's network (it serves no one).
        assert ipaddress.IPv4Address(found["snapped_address"]) not in subnet, found
    else:  # a worker that forks nothing runs every hook in the container itself
        assert found["snapped_address"] == found["address"], found


def test_with_an_advertise_host_not_loopback_the_container_is_reached_at_a_published_port(
    tmp_path: Path, debian_rootfs: Path, outside: Outside
) -> None:
    # The advertise host is an address other machines reach: the one facing the outside namespace.
    env = {
        "STOKER_SANDBOX_ROOTFS": str(debian_rootfs),
        "STOKER_CONTAINER_NETWORK": "1",
        "STOKER_CONTAINER_SUBNET": free_subnet(),
        "STOKER_CONTAINER_BRIDGE": f"stkn{RUN}p",
        "STOKER_ADVERTISE_HOST": str(outside.host_address),
    }
    with running_cluster(tmp_path, **env) as cluster:
        url = cluster.deploy("sandbox_network.py")["replica_a"]
        response = cluster.get(url)
        assert response.status_code == 200, response.text
        hostname = response.text.split()[0]
        assert cluster.output is not None
        warm = [line for line in cluster.output.lines if f"{hostname} is warm at " in line]
        assert warm and warm[0].split(" is warm at ")[1].startswith(f"{outside.host_address}:"), warm


def test_containers_of_images_and_of_no_image_alike_get_their_own_network(tmp_path: Path) -> None:
    subnet = ipaddress.IPv4Network(free_subnet())
    env = {
        "STOKER_CONTAINER_NETWORK": "1",
        "STOKER_CONTAINER_SUBNET": str(subnet),
        "STOKER_CONTAINER_BRIDGE": f"stkn{RUN}i",
    }
    with running_cluster(tmp_path, **env) as cluster:  # no --sandbox-rootfs: the default root
        urls = cluster.deploy("sandbox_network_image.py")
        for function in ("in_image", "no_image"):
            found = _probe(cluster, urls[function])
            assert found["address"] and ipaddress.IPv4Address(found["address"]) in subnet, (function, found)


def test_private_without_a_container_network_is_refused_saying_why(tmp_path: Path) -> None:
    done = subprocess.run(
        stoker_command("worker", "--work-dir", str(tmp_path), "--no-container-network", "--sandbox-network", "private"),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    said = " ".join(word for word in done.stderr.split() if word not in ("│", "╭", "╰"))  # rich's box, unwrapped
    assert "--sandbox-network private needs a container network" in said, done.stderr
    assert "Traceback" not in done.stderr
