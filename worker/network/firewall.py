"""The worker's iptables rules: NAT outward, and what a container may reach.

A container is a hostile program until shown otherwise. So, by default:
- it reaches the outside world (MASQUERADE out of any interface but the bridge), except
  link-local addresses (169.254.0.0/16: a cloud's metadata service hands out credentials);
- it reaches no other container: not over the bridge (its port is isolated, bridge.py), not
  routed through the host (FORWARD drops bridge to bridge), not through a published port;
- it reaches none of the host's own services (the ingress, the scheduler's other ports, sshd,
  anything on 127.0.0.1 or the host's addresses), except the host services named for it: the
  scheduler, for function calls, and the ingresses of this machine. A service listening on
  loopback only is mapped to the gateway's address (DNAT, with route_localnet on the bridge
  alone); so is a loopback-only name server of the host, at port 53 (dns.py);
- with block_network it opens no connection at all (only replies to connections the ingress
  or the scheduler opened to it leave it), so it has loopback only for anything of its own.

Rules live in chains named after the worker (names.py); the jumps to them from the built-in
chains carry a comment naming the worker. Jumps that police traffic *into* a bridge go first in
FORWARD, the one accepting traffic *from* it last: so that of two workers on one machine, neither
accepts traffic into the other's bridge before the other's rules see it, and so that a host
firewall's own rules (Docker's, a FORWARD policy of DROP) still come before ours.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from worker.network.commands import run
from worker.network.dns import DNS_PORT
from worker.network.names import NetworkNames

METADATA_RANGE = "169.254.0.0/16"


@dataclass(frozen=True)
class HostService:
    """A TCP service on the host that containers may reach, at `address:port` as the host sees it;
    one on loopback is reached at the gateway's address, same port."""

    address: ipaddress.IPv4Address
    port: int

    @property
    def on_loopback(self) -> bool:
        return self.address.is_loopback


def base_rules(
    names: NetworkNames,
    subnet: ipaddress.IPv4Network,
    services: Iterable[HostService],
    dns: ipaddress.IPv4Address | None = None,
) -> str:
    """iptables-restore input creating the worker's chains, their rules and the jumps to them;
    `dns`: a loopback resolver of the host that containers reach at their gateway's port 53."""
    br, tag = names.bridge, f'-m comment --comment "{names.comment}"'
    fwd, inp, block = names.chain("FWD"), names.chain("IN"), names.chain("BLOCK")
    pre, out, post = names.chain("PRE"), names.chain("OUT"), names.chain("POST")
    gateway = subnet.network_address + 1
    lines = [
        "*filter",
        f":{fwd} - [0:0]",
        f":{inp} - [0:0]",
        f":{block} - [0:0]",
        f"-I FORWARD 1 -o {br} {tag} -j {fwd}",
        f"-A FORWARD -i {br} {tag} -j {fwd}",
        f"-I INPUT 1 -i {br} {tag} -j {inp}",
        f"-A {fwd} -i {br} -o {br} -j DROP",
        f"-A {fwd} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        f"-A {fwd} -i {br} -j {block}",
        f"-A {fwd} -i {br} -d {METADATA_RANGE} -j DROP",
        f"-A {fwd} -i {br} -j ACCEPT",
        f"-A {fwd} -o {br} -m conntrack --ctstate DNAT -j ACCEPT",  # published ports (publish())
        f"-A {fwd} -j DROP",
        f"-A {inp} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        f"-A {inp} -j {block}",
    ]
    nat: list[str] = []
    for service in services:
        lines.append(f"-A {inp} -p tcp -d {service.address} --dport {service.port} -j ACCEPT")
        if service.on_loopback:
            nat.append(
                f"-A {pre} -i {br} -d {gateway} -p tcp --dport {service.port}"
                f" -j DNAT --to-destination {service.address}:{service.port}"
            )
    for protocol in ("udp", "tcp") if dns is not None else ():
        lines.append(f"-A {inp} -p {protocol} -d {dns} --dport {DNS_PORT} -j ACCEPT")
        nat.append(
            f"-A {pre} -i {br} -d {gateway} -p {protocol} --dport {DNS_PORT} -j DNAT --to-destination {dns}:{DNS_PORT}"
        )
    lines += [f"-A {inp} -j DROP", "COMMIT", "*nat", f":{pre} - [0:0]", f":{out} - [0:0]", f":{post} - [0:0]"]
    lines += [f"-I PREROUTING 1 {tag} -j {pre}", f"-I OUTPUT 1 {tag} -j {out}", f"-I POSTROUTING 1 {tag} -j {post}"]
    lines += nat
    lines += [f"-A {post} -s {subnet} ! -o {br} -j MASQUERADE", "COMMIT", ""]
    return "\n".join(lines)


async def install(
    names: NetworkNames,
    subnet: ipaddress.IPv4Network,
    services: Iterable[HostService],
    dns: ipaddress.IPv4Address | None = None,
) -> None:
    await run(["iptables-restore", "--noflush", "--wait"], base_rules(names, subnet, services, dns))


async def remove(names: NetworkNames) -> None:
    """Remove the worker's jumps and chains, whatever run of the worker made them."""
    script: list[str] = []
    for table in ("filter", "nat"):
        listing = await run(["iptables", "-w", "-t", table, "-S"])
        ours = {names.chain(role) for role in ("FWD", "IN", "BLOCK", "PRE", "OUT", "POST")}
        jumps, chains = [], []
        for line in listing.splitlines():
            words = line.split()
            if words[:1] == ["-A"] and words[1] not in ours and "-j" in words and words[words.index("-j") + 1] in ours:
                jumps.append("-D" + line[2:])
            elif words[:1] == ["-N"] and words[1] in ours:
                chains.append(words[1])
        script += [f"*{table}", *jumps, *(f"-F {c}" for c in chains), *(f"-X {c}" for c in chains), "COMMIT"]
    await run(["iptables-restore", "--noflush", "--wait"], "\n".join(script) + "\n")


def _block_rule(names: NetworkNames, address: ipaddress.IPv4Address) -> str:
    return f"{names.chain('BLOCK')} -s {address}/32 -j DROP"


async def block(names: NetworkNames, address: ipaddress.IPv4Address) -> None:
    await run(["iptables-restore", "--noflush", "--wait"], f"*filter\n-A {_block_rule(names, address)}\nCOMMIT\n")


async def unblock(names: NetworkNames, address: ipaddress.IPv4Address) -> None:
    await run(["iptables-restore", "--noflush", "--wait"], f"*filter\n-D {_block_rule(names, address)}\nCOMMIT\n")


def _port_rules(
    names: NetworkNames, host: ipaddress.IPv4Address, host_port: int, address: ipaddress.IPv4Address, port: int
) -> list[str]:
    target = f"-d {host}/32 -p tcp -m tcp --dport {host_port} -j DNAT --to-destination {address}:{port}"
    # PREROUTING for an ingress on another machine, OUTPUT for one on this machine.
    return [f"{names.chain('PRE')} {target}", f"{names.chain('OUT')} {target}"]


async def publish(
    names: NetworkNames, host: ipaddress.IPv4Address, host_port: int, address: ipaddress.IPv4Address, port: int
) -> None:
    rules = _port_rules(names, host, host_port, address, port)
    await run(["iptables-restore", "--noflush", "--wait"], "*nat\n" + "".join(f"-A {r}\n" for r in rules) + "COMMIT\n")


async def unpublish(
    names: NetworkNames, host: ipaddress.IPv4Address, host_port: int, address: ipaddress.IPv4Address, port: int
) -> None:
    rules = _port_rules(names, host, host_port, address, port)
    await run(["iptables-restore", "--noflush", "--wait"], "*nat\n" + "".join(f"-D {r}\n" for r in rules) + "COMMIT\n")
