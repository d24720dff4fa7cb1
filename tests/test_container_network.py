"""The worker's container network (worker/network/), on real namespaces, veths, bridges and
firewall rules of this machine. Every name carries this run's tag; everything is removed after.

"Containers" here are processes in a network namespace of their own (`unshare --net`), running
tests/netns/peer.py: each listens on a port and answers with its name and its peer's address.
The "outside world" is another test-made namespace behind a veth of the host's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import base_env, stoker_command, wait_until
from worker.network import Attachment, ContainerNetwork, NetworkConfig

PEER = Path(__file__).parent / "netns" / "peer.py"
RUN = secrets.token_hex(3)  # this test run's tag, in every name it gives

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("ip", "nft", "iptables", "unshare", "nsenter")),
    reason="needs root, iproute2, nftables, iptables and util-linux",
)


class Peer:
    """A process in a network namespace, running peer.py."""

    def __init__(self, argv: list[str], name: str, port: int) -> None:
        self.process = subprocess.Popen(
            [*argv, sys.executable, str(PEER), name, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._line() == "ready"

    @property
    def pid(self) -> int:
        return self.process.pid

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def connect(self, host: object, port: int, *, over: str = "connect") -> str:
        """Connect (over="udp": send a datagram) to host:port from the peer's namespace."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{over} {host} {port}\n")
        self.process.stdin.flush()
        return self._line()

    def close(self) -> None:
        self.process.kill()
        self.process.wait(10)


def container(name: str, port: int = 8000) -> Peer:
    return Peer(["unshare", "--net"], name, port)  # unshare execs: the peer keeps its pid


def connect(host: object, port: int) -> str:
    """From the host, as peer.py's connect."""
    try:
        with socket.create_connection((str(host), port), timeout=1.5) as conn:
            conn.settimeout(1.5)
            return "ok " + conn.makefile().readline().strip()
    except OSError as exc:
        return f"failed {type(exc).__name__}"


def sh(*argv: str, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0 or not check, f"{' '.join(argv)}: {done.stderr}"
    return done.stdout


def free_subnet() -> str:
    used = [ipaddress.IPv4Network(w, strict=False) for w in sh("ip", "-4", "-o", "addr").split() if "/" in w]
    for _ in range(50):
        candidate = ipaddress.IPv4Network(f"10.{random.randrange(160, 250)}.{random.randrange(0, 256, 16)}.0/20")
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    raise AssertionError("no free test subnet")


class Network:
    """A ContainerNetwork driven from synchronous tests."""

    def __init__(self, runner: asyncio.Runner, config: NetworkConfig) -> None:
        self.runner = runner
        self.network = ContainerNetwork(config)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.network, name)
        if not asyncio.iscoroutinefunction(method):
            return method
        return lambda *args, **kwargs: self.runner.run(method(*args, **kwargs))


@pytest.fixture
def make_network(tmp_path: Path) -> Iterator[Any]:
    runner = asyncio.Runner()
    made: list[Network] = []

    def make(**options: Any) -> Network:
        config = NetworkConfig(
            worker_id=f"test-{RUN}", work_dir=str(tmp_path), subnet=free_subnet(), bridge=f"stkt{RUN}", **options
        )
        network = Network(runner, config)
        network.start()
        made.append(network)
        return network

    yield make
    for network in made:
        network.stop()
    runner.close()


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for peer in started:
        peer.close()


class Outside:
    """The outside world: a namespace behind a veth of the host's, with a server at `address`."""

    def __init__(self) -> None:
        self.netns = f"stkt{RUN}o"
        self.host_end = f"stkt{RUN}h"
        net = random.randrange(0, 256)
        self.host_address = ipaddress.IPv4Address(f"198.18.{net}.1")
        self.address = ipaddress.IPv4Address(f"198.18.{net}.2")
        sh("ip", "netns", "add", self.netns)
        try:
            self._build()
        except BaseException:
            sh("ip", "netns", "del", self.netns, check=False)
            raise

    def _build(self) -> None:
        sh("ip", "link", "add", self.host_end, "type", "veth", "peer", "name", "eth0", "netns", self.netns)
        sh("ip", "addr", "add", f"{self.host_address}/24", "dev", self.host_end)
        sh("ip", "link", "set", self.host_end, "up")
        inside = ["ip", "netns", "exec", self.netns]
        sh(*inside, "ip", "addr", "add", f"{self.address}/24", "dev", "eth0")
        sh(*inside, "ip", "link", "set", "eth0", "up")
        sh(*inside, "ip", "link", "set", "lo", "up")
        self.server = Peer(inside, "outside", 9000)

    def close(self) -> None:
        self.server.close()
        # The veth now, not when the kernel gets round to the namespace: the next test makes one.
        sh("ip", "link", "del", self.host_end, check=False)
        sh("ip", "netns", "del", self.netns, check=False)


@pytest.fixture
def outside() -> Iterator[Outside]:
    world = Outside()
    yield world
    world.close()


class HostListener:
    """A server of the host's own (the ingress, sshd...), on `host`."""

    def __init__(self, host: str, name: str) -> None:
        self.socket = socket.socket()
        self.socket.bind((host, 0))
        self.socket.listen(8)
        self.port = self.socket.getsockname()[1]
        threading.Thread(target=self._serve, args=(name,), daemon=True).start()

    def _serve(self, name: str) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, peer = self.socket.accept()
                with conn:
                    conn.sendall(f"{name} {peer[0]}\n".encode())


@pytest.fixture
def host_listeners() -> Iterator[list[HostListener]]:
    made: list[HostListener] = []
    yield made
    for listener in made:
        listener.socket.close()


def start(peers: list[Peer], name: str) -> Peer:
    peer = container(name)
    peers.append(peer)
    return peer


def test_two_containers_listen_on_8000_each_at_its_own_address(make_network: Any, peers: list[Peer]) -> None:
    network = make_network()
    a, b = start(peers, "a"), start(peers, "b")
    at_a: Attachment = network.attach(a.pid)
    at_b: Attachment = network.attach(b.pid)
    assert at_a.address != at_b.address
    assert at_a.address in network.subnet.network and at_b.address in network.subnet.network
    assert connect(at_a.address, 8000) == f"ok a {network.gateway}"
    assert connect(at_b.address, 8000) == f"ok b {network.gateway}"
    assert network.advertise(at_a, 8000) == f"{at_a.address}:8000"  # loopback advertise host: no mapping
    # Containers are isolated from each other.
    assert a.connect(at_b.address, 8000).startswith("failed")
    assert b.connect(at_a.address, 8000).startswith("failed")


def test_a_container_in_its_own_user_namespace_too_is_reachable(make_network: Any, peers: list[Peer]) -> None:
    network = make_network()
    # As the sandbox makes them: the network namespace belongs to the container's user namespace.
    sandboxed = Peer(["unshare", "--user", "--map-root-user", "--net"], "sandboxed", 8000)
    peers.append(sandboxed)
    attachment = network.attach(sandboxed.pid)
    assert connect(attachment.address, 8000) == f"ok sandboxed {network.gateway}"


def test_containers_attached_at_once_get_distinct_working_addresses(make_network: Any, peers: list[Peer]) -> None:
    network = make_network()
    started = [start(peers, f"c{i}") for i in range(6)]

    async def attach_all() -> list[Attachment]:
        return await asyncio.gather(*(network.network.attach(p.pid) for p in started))

    attachments = network.runner.run(attach_all())
    assert len({a.address for a in attachments}) == len(started)
    for i, attachment in enumerate(attachments):
        assert connect(attachment.address, 8000) == f"ok c{i} {network.gateway}"


def test_a_container_reaches_the_outside_world_with_the_hosts_address(
    make_network: Any, peers: list[Peer], outside: Outside
) -> None:
    network = make_network()
    a = start(peers, "a")
    network.attach(a.pid)
    assert a.connect(outside.address, 9000) == f"ok outside {outside.host_address}"
    assert a.connect(outside.address, 9000, over="udp") == f"ok outside {outside.host_address}"  # DNS's way


def test_block_network_leaves_only_replies_to_the_ingress(
    make_network: Any, peers: list[Peer], outside: Outside, host_listeners: list[HostListener]
) -> None:
    scheduler = HostListener("127.0.0.1", "scheduler")
    host_listeners.append(scheduler)
    network = make_network(host_services=(f"127.0.0.1:{scheduler.port}",))
    free, blocked = start(peers, "free"), start(peers, "blocked")
    network.attach(free.pid)
    at_blocked = network.attach(blocked.pid, block_network=True)
    assert blocked.connect(outside.address, 9000).startswith("failed")
    assert blocked.connect(outside.address, 9000, over="udp").startswith("failed")
    assert free.connect(outside.address, 9000) == f"ok outside {outside.host_address}"
    # The ingress (on the host) still reaches the blocked container's server.
    assert connect(at_blocked.address, 8000) == f"ok blocked {network.gateway}"
    # Not even the scheduler: nothing of its own leaves it.
    gateway, port = network.container_address(f"127.0.0.1:{scheduler.port}").split(":")
    assert blocked.connect(gateway, int(port)).startswith("failed")
    assert free.connect(gateway, int(port)).startswith("ok scheduler")
    # Its address, once free again, is no longer blocked for the next container.
    network.detach(at_blocked)
    assert network.pool.in_use() == 1


def test_a_container_reaches_no_host_service_but_those_allowed(
    make_network: Any, peers: list[Peer], outside: Outside, host_listeners: list[HostListener]
) -> None:
    loopback_only = HostListener("127.0.0.1", "loopback-only")
    everywhere = HostListener("0.0.0.0", "everywhere")
    allowed = HostListener("127.0.0.1", "scheduler")
    host_listeners += [loopback_only, everywhere, allowed]
    network = make_network(host_services=(f"127.0.0.1:{allowed.port}",))
    a = start(peers, "a")
    at_a = network.attach(a.pid)
    gateway = network.gateway
    assert a.connect(gateway, everywhere.port).startswith("failed")
    assert a.connect(outside.host_address, everywhere.port).startswith("failed")  # another address of the host's
    assert a.connect(gateway, loopback_only.port).startswith("failed")
    assert a.connect("127.0.0.1", loopback_only.port).startswith("failed")  # its own loopback, not the host's
    assert network.container_address(f"127.0.0.1:{allowed.port}") == f"{gateway}:{allowed.port}"
    assert a.connect(gateway, allowed.port) == f"ok scheduler {at_a.address}"  # it sees who calls
    # The host itself (an ingress on this machine) still reaches everything.
    assert connect("127.0.0.1", everywhere.port).startswith("ok everywhere")


def test_a_container_that_takes_another_address_is_cut_off(
    make_network: Any, peers: list[Peer], outside: Outside
) -> None:
    network = make_network()
    a, b = start(peers, "a"), start(peers, "b")
    at_a, at_b = network.attach(a.pid), network.attach(b.pid)
    # Root in its namespace, `a` gives itself `b`'s MAC and address (and drops its own).
    prefix = network.subnet.network.prefixlen
    enter = ["nsenter", f"--net=/proc/{a.pid}/ns/net", "ip"]
    sh(*enter, "link", "set", "eth0", "address", at_b.mac)
    sh(*enter, "addr", "del", f"{at_a.address}/{prefix}", "dev", "eth0")
    sh(*enter, "addr", "add", f"{at_b.address}/{prefix}", "dev", "eth0")
    sh(*enter, "route", "replace", "default", "via", str(network.gateway))
    assert a.connect(outside.address, 9000).startswith("failed")
    assert a.connect(network.gateway, 1).startswith("failed")
    # The host (the ingress) still reaches the real `b`, not `a`.
    for _ in range(3):
        assert connect(at_b.address, 8000) == f"ok b {network.gateway}"


def test_published_ports_reach_the_container_from_other_machines(
    make_network: Any, peers: list[Peer], outside: Outside
) -> None:
    # The advertise host is an address other machines reach: the one facing the outside namespace.
    network = make_network(advertise_host=str(outside.host_address))
    a = start(peers, "a")
    at_a = network.attach(a.pid)
    advertised = network.advertise(at_a, 8000)
    host, port = advertised.split(":")
    assert host == str(outside.host_address) and int(port) != 8000
    # An ingress on another machine, and one on this machine.
    assert outside.server.connect(host, int(port)) == f"ok a {outside.address}"
    assert connect(host, int(port)).startswith("ok a ")
    # Another container cannot use the mapping to reach it.
    b = start(peers, "b")
    network.attach(b.pid)
    assert b.connect(host, int(port)).startswith("failed")
    network.detach(at_a)
    assert outside.server.connect(host, int(port)).startswith("failed")


def _our_rules(tag: str) -> list[str]:
    rules = sh("iptables", "-S") + sh("iptables", "-t", "nat", "-S")
    return [line for line in rules.splitlines() if tag in line]


KILLED_WORKER = """
import asyncio, subprocess, sys
from worker.network import ContainerNetwork, NetworkConfig
async def main():
    network = ContainerNetwork(NetworkConfig(worker_id=sys.argv[1], work_dir=sys.argv[2], subnet=sys.argv[3],
                                             bridge=sys.argv[4]))
    await network.start()
    await network.attach(int(sys.argv[5]))
    print("attached", flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
"""


def test_a_killed_workers_network_is_cleaned_at_the_next_start_and_stop_removes_it(
    make_network: Any, tmp_path: Path, peers: list[Peer]
) -> None:
    subnet, bridge = free_subnet(), f"stkt{RUN}"
    survivor = start(peers, "survivor")  # a container the killed worker leaves behind, still alive
    worker = subprocess.Popen(
        [sys.executable, "-c", KILLED_WORKER, f"test-{RUN}", str(tmp_path), subnet, bridge, str(survivor.pid)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "attached"
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    runner = asyncio.Runner()
    network = Network(
        runner, NetworkConfig(worker_id=f"test-{RUN}", work_dir=str(tmp_path), subnet=subnet, bridge=bridge)
    )
    tag = network.names.tag
    stale_veths = [line for line in sh("ip", "-o", "link").splitlines() if network.names.veth_prefix in line]
    assert len(stale_veths) == 1
    try:
        network.start()
        assert not [line for line in sh("ip", "-o", "link").splitlines() if network.names.veth_prefix in line]
        rules = _our_rules(tag)
        jumps = [r for r in rules if r.startswith("-A") and "--comment" in r]
        assert len(jumps) == 6, rules  # FORWARD (2), INPUT, PREROUTING, OUTPUT, POSTROUTING: once each
        at = network.attach(survivor.pid)  # the survivor's namespace takes a new veth
        assert connect(at.address, 8000) == f"ok survivor {network.gateway}"
    finally:
        network.stop()
        runner.close()
    assert bridge not in sh("ip", "-o", "link")
    assert not _our_rules(tag)
    assert network.names.nft_table not in sh("nft", "list", "tables")


def _worker(tmp_path: Path, *flags: str) -> subprocess.Popen[str]:
    env = base_env(tmp_path)
    return subprocess.Popen(
        stoker_command("worker", "--scheduler", "127.0.0.1:1", "--work-dir", str(tmp_path / "w"), *flags),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_the_worker_makes_its_bridge_at_start_and_removes_it_at_stop(tmp_path: Path) -> None:
    bridge = f"stkt{RUN}w"
    worker = _worker(tmp_path, "--container-network", "--container-bridge", bridge, "--container-subnet", free_subnet())
    try:
        assert wait_until(lambda: bridge in sh("ip", "-o", "link"), 60)
        assert wait_until(lambda: any(bridge in rule for rule in _our_rules("STOKER-")), 10)
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, output
    assert bridge not in sh("ip", "-o", "link")
    assert not [rule for rule in _our_rules("STOKER-") if bridge in rule]


def test_a_worker_whose_subnet_is_taken_refuses_to_start_saying_so(tmp_path: Path, outside: Outside) -> None:
    taken = str(ipaddress.IPv4Network(f"{outside.host_address}/24", strict=False))
    worker = _worker(tmp_path, "--container-network", "--container-bridge", f"stkt{RUN}w", "--container-subnet", taken)
    output, _ = worker.communicate(timeout=60)
    assert worker.returncode != 0
    assert "cannot start the container network: --container-subnet 198.18." in output
    assert "give this worker another subnet" in output and "Traceback" not in output


def test_workers_naming_no_subnet_each_claim_a_free_one_of_their_own(tmp_path: Path) -> None:
    from worker.network import subnets

    runner = asyncio.Runner()
    networks = [
        ContainerNetwork(NetworkConfig(worker_id=f"test-{RUN}-{i}", work_dir=str(tmp_path), bridge=f"stkt{RUN}a{i}"))
        for i in range(3)
    ]

    async def start_all() -> None:
        await asyncio.gather(*(network.start() for network in networks))  # at once: the lock decides

    try:
        runner.run(start_all())
        claimed = [network.subnet.network for network in networks]
        assert all(network.subnet_of(subnets.AUTO_POOL) and network.prefixlen == 20 for network in claimed)
        assert not any(a.overlaps(b) for i, a in enumerate(claimed) for b in claimed[i + 1 :]), claimed
        for network, subnet in zip(networks, claimed, strict=True):
            assert f"{subnet.network_address + 1}/20" in sh("ip", "-o", "-4", "addr", "show", network.names.bridge)
    finally:
        for network in networks:
            runner.run(network.stop())
        runner.close()


def test_a_bridge_whose_worker_is_gone_is_removed_by_the_next_claim(tmp_path: Path) -> None:
    from worker.network import bridge, firewall, subnets
    from worker.network.names import NetworkNames

    dead_pid = int(sh("sh", "-c", "echo $$").strip())  # a shell's, which has exited
    runner = asyncio.Runner()
    left = NetworkNames(tag=f"{RUN[:4]}ee", bridge=f"stkt{RUN}l", worker="")
    alive = NetworkNames(tag=f"{RUN[:4]}ff", bridge=f"stkt{RUN}k", worker="")
    address = ipaddress.IPv4Network(free_subnet())
    kept_address = ipaddress.IPv4Network(free_subnet())
    network = ContainerNetwork(NetworkConfig(worker_id=f"test-{RUN}", work_dir=str(tmp_path), bridge=f"stkt{RUN}n"))
    try:
        dead = subnets.Owner(dead_pid, subnets.own_pid_namespace(), left.tag)
        runner.run(bridge.create(left, address, address.network_address + 1, owner=dead.alias()))
        runner.run(firewall.install(left, address, []))
        living = subnets.Owner(os.getpid(), subnets.own_pid_namespace(), alive.tag)
        runner.run(bridge.create(alive, kept_address, kept_address.network_address + 1, owner=living.alias()))
        runner.run(network.start())
        links = sh("ip", "-o", "link")
        assert left.bridge not in links and alive.bridge in links
        assert not [rule for rule in _our_rules("STOKER-") if left.tag in rule]
    finally:
        runner.run(network.stop())
        for names in (left, alive):
            runner.run(firewall.remove(names))
            runner.run(bridge.remove(names))
        runner.close()
