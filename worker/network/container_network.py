"""ContainerNetwork: the worker's bridge, and an address of its own for each container.

The worker calls start() once (after a crash too: it removes what a previous run left) and
stop() last. For each container, whose process already has its own network namespace (the
sandbox unshared it), it calls attach(pid) and, once the container serves on a port,
advertise(attachment, port) for the address to tell the scheduler; detach(attachment) when
the container is gone. All of it is iproute2, nftables and iptables driven in batches: a few
processes per container (about 10 ms), no daemon, nothing left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

from worker.network import bridge, firewall, subnets
from worker.network.addresses import AddressPool, Subnet
from worker.network.commands import NetworkError, read_sysctl, run, write_sysctl
from worker.network.firewall import HostService
from worker.network.names import NetworkNames, mac_for

log = logging.getLogger(__name__)

CONTAINER_INTERFACE = "eth0"  # the container's end of its veth, as it sees it
# Present while some worker's network turned IPv4 forwarding on (it was off): the last worker
# to stop turns it off again.
FORWARDING_MARKER = Path("/run/stoker/ipv4-forwarding-enabled")


@dataclass(frozen=True)
class NetworkConfig:
    worker_id: str
    work_dir: str  # with worker_id, names this worker's bridge, chains and tables (names.py)
    subnet: str = ""  # empty: a free one, claimed at start (subnets.py)
    bridge: str = ""  # empty: derived from the worker
    advertise_host: str = "127.0.0.1"  # not loopback: containers are published on it (publish())
    host_services: tuple[str, ...] = ()  # "host:port" TCP services containers may reach (the scheduler)
    dns_forward: str = ""  # a loopback name server of the host that containers reach at their gateway (dns.py)


@dataclass(frozen=True)
class Attachment:
    """A container's place on the bridge."""

    pid: int
    address: ipaddress.IPv4Address
    veth: str  # the host end
    mac: str
    block_network: bool


@dataclass
class _Published:
    host_port: int
    port: int
    reservation: socket.socket  # holds the host port while it is published


@dataclass
class _State:
    attachments: dict[ipaddress.IPv4Address, Attachment] = field(default_factory=dict)
    published: dict[ipaddress.IPv4Address, list[_Published]] = field(default_factory=dict)


class ContainerNetwork:
    def __init__(self, config: NetworkConfig) -> None:
        self.config = config
        # Given: checked now; else claimed at start().
        self._subnet = Subnet.parse(config.subnet) if config.subnet else None
        self.names = NetworkNames.for_worker(config.worker_id, config.work_dir, config.bridge)
        if len(self.names.bridge) > 15:
            raise NetworkError(f"--container-bridge {self.names.bridge!r} is longer than 15 characters")
        self.pool = AddressPool(self._subnet) if self._subnet is not None else None
        self.advertise_host = _ipv4(config.advertise_host, "--advertise-host")
        self.services = [_host_service(text) for text in config.host_services]
        self._state = _State()
        self.started = False

    @property
    def subnet(self) -> Subnet:
        if self._subnet is None:
            raise NetworkError("the container network is not started")
        return self._subnet

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.subnet.gateway

    @property
    def publishes(self) -> bool:
        """Whether ingresses reach containers through ports of the advertise host: when it is not
        loopback, they may be on other machines, which cannot route to the bridge."""
        return not self.advertise_host.is_loopback

    async def start(self) -> None:
        """Create the bridge and the firewall rules (idempotent: first removes a previous run's)."""
        if os.geteuid() != 0:
            raise NetworkError("container networking needs root (it creates a bridge and firewall rules)")
        async with subnets.machine_lock():
            await subnets.remove_abandoned(keep=self.names)
            await self._remove_all()
            if self.config.subnet:
                await bridge.check_subnet_free(self.names, self.subnet.network)
            else:  # claimed afresh each start: what was free when it last ran may not be now
                self._subnet = Subnet(subnets.first_free(await subnets.taken_networks(ignore=self.names.bridge)))
            self.pool = AddressPool(self.subnet)
            owner = subnets.owner_of_this_process(self.names)
            await bridge.create(self.names, self.subnet.network, self.gateway, owner=owner.alias())
        dns = ipaddress.IPv4Address(self.config.dns_forward) if self.config.dns_forward else None
        await firewall.install(self.names, self.subnet.network, [s for s in self.services if s is not None], dns)
        self._enable_forwarding()
        self.started = True
        log.info("container network: bridge %s, subnet %s", self.names.bridge, self.subnet.network)

    async def stop(self) -> None:
        """Remove the bridge, its veths and the firewall rules."""
        for published in self._state.published.values():
            for entry in published:
                entry.reservation.close()
        self._state = _State()
        if self._subnet is not None:
            self.pool = AddressPool(self._subnet)
        await self._remove_all()
        await self._restore_forwarding()
        self.started = False

    async def _remove_all(self) -> None:
        await firewall.remove(self.names)
        await bridge.remove(self.names)

    def container_address(self, host_port: str) -> str:
        """How a container reaches the host service `host_port` (one of host_services): a service
        on the host's loopback is at the gateway's address."""
        service = _host_service(host_port)
        if service is not None and service.on_loopback:
            return f"{self.gateway}:{service.port}"
        return host_port

    async def attach(self, pid: int, *, block_network: bool = False) -> Attachment:
        """Give the network namespace of process `pid` an address on the bridge, loopback up and
        a default route through the gateway. With `block_network`, it opens no connection of its
        own (the host's firewall drops all but its replies), while the ingress still reaches it."""
        if not self.started or self.pool is None:
            raise NetworkError("the container network is not started")
        pool = self.pool
        address = pool.take()
        index = self.subnet.index(address)
        attachment = Attachment(pid, address, self.names.veth(index), mac_for(index, self.names.tag), block_network)
        try:
            await self._attach(attachment)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._undo(attachment)
            pool.release(address)
            raise
        self._state.attachments[address] = attachment
        return attachment

    async def _attach(self, a: Attachment) -> None:
        br = self.names.bridge
        host_side = (
            f"link add {a.veth} type veth peer name {CONTAINER_INTERFACE} address {a.mac} netns {a.pid}\n"
            f"link set {a.veth} master {br}\n"
            f"link set dev {a.veth} type bridge_slave isolated on\n"
            f"link set {a.veth} up\n"
            # The host believes only the worker on which MAC has which address (no ARP spoofing).
            f"neigh replace {a.address} lladdr {a.mac} dev {br} nud permanent\n"
        )
        inside = (
            "link set lo up\n"
            f"addr add {a.address}/{self.subnet.network.prefixlen} dev {CONTAINER_INTERFACE}\n"
            f"link set {CONTAINER_INTERFACE} up\n"
            f"route add default via {self.gateway}\n"
        )
        # The port's filter and a blocked container's rule are in place before its route is.
        steps: list[Awaitable[object]] = [
            run(["ip", "-batch", "-"], host_side),
            run(["nft", "-f", "-"], self._port(a, "add")),
        ]
        if a.block_network:
            steps.append(firewall.block(self.names, a.address))
        await asyncio.gather(*steps)
        await run(["nsenter", f"--net=/proc/{a.pid}/ns/net", "ip", "-batch", "-"], inside)

    def _port(self, a: Attachment, verb: str) -> str:
        return bridge.port_elements(self.names, a.veth, a.mac, a.address, verb)

    async def advertise(self, attachment: Attachment, port: int) -> str:
        """The address ingresses and the scheduler reach the container's `port` at."""
        if not self.publishes:
            return f"{attachment.address}:{port}"
        return f"{self.advertise_host}:{await self.publish(attachment, port)}"

    async def publish(self, attachment: Attachment, port: int) -> int:
        """Map a free port of the advertise host to the container's `port` (DNAT); that host port."""
        reservation = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Bound (never listening) for as long as the mapping lasts: nothing else on the host
            # gets the port, and DNAT takes the connections before they would reach it.
            reservation.bind((str(self.advertise_host), 0))
            host_port = int(reservation.getsockname()[1])
            await firewall.publish(self.names, self.advertise_host, host_port, attachment.address, port)
        except BaseException:
            reservation.close()
            raise
        self._state.published.setdefault(attachment.address, []).append(_Published(host_port, port, reservation))
        return host_port

    async def unpublish(self, attachment: Attachment) -> None:
        for entry in self._state.published.pop(attachment.address, []):
            try:
                await firewall.unpublish(
                    self.names, self.advertise_host, entry.host_port, attachment.address, entry.port
                )
            finally:
                entry.reservation.close()

    async def detach(self, attachment: Attachment) -> None:
        """Release the container's address, ports and rules (its veth goes with its namespace;
        removed here too, should the process still be alive)."""
        if self._state.attachments.pop(attachment.address, None) is None:
            return
        try:
            await self.unpublish(attachment)
            await self._undo(attachment)
        finally:
            if self.pool is not None:
                self.pool.release(attachment.address)

    async def _undo(self, a: Attachment) -> None:
        host_side = f"link del dev {a.veth}\nneigh del {a.address} dev {self.names.bridge}\n"
        steps: list[Awaitable[object]] = [
            run(["ip", "-force", "-batch", "-"], host_side, check=False),
            run(["nft", "-f", "-"], self._port(a, "delete"), check=False),
        ]
        if a.block_network:
            steps.append(firewall.unblock(self.names, a.address))
        results = await asyncio.gather(*steps, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.warning("container network: undoing %s: %s", a.address, result)

    def _enable_forwarding(self) -> None:
        if read_sysctl("net/ipv4/ip_forward") == "1":
            return
        # Every container runtime does this; our FORWARD rules decide what the bridge forwards.
        write_sysctl("net/ipv4/ip_forward", "1")
        FORWARDING_MARKER.parent.mkdir(parents=True, exist_ok=True)
        FORWARDING_MARKER.touch()
        log.info("container network: turned IPv4 forwarding on")

    async def _restore_forwarding(self) -> None:
        tables = await run(["nft", "list", "tables", "bridge"], check=False)
        if "stoker_" not in tables:  # else another worker's network still needs it
            _forwarding_off_if_we_turned_it_on()


def _forwarding_off_if_we_turned_it_on() -> None:
    if FORWARDING_MARKER.exists():
        write_sysctl("net/ipv4/ip_forward", "0")
        FORWARDING_MARKER.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            FORWARDING_MARKER.parent.rmdir()  # if nothing else of stoker's is there


def _ipv4(host: str, what: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(socket.gethostbyname(host))
    except (OSError, ValueError) as exc:
        raise NetworkError(f"{what} {host!r} has no IPv4 address: {exc}") from None


def _host_service(host_port: str) -> HostService | None:
    """The host service at `host_port`, or None when that address is not this host's."""
    host, _, port = host_port.rpartition(":")
    if not port.isdigit():
        raise NetworkError(f"a host service must be host:port, got {host_port!r}")
    address = _ipv4(host, "host service")
    if not address.is_loopback:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((str(address), 0))  # binds only to an address of this host
            except OSError:
                return None  # another machine's: containers reach it through NAT
    return HostService(address, int(port))
