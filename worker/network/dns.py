"""The /etc/resolv.conf a container gets, from the host's: name servers it can reach.

A host resolver on loopback (systemd-resolved's 127.0.0.53, a dnsmasq on 127.0.0.1, Docker's
127.0.0.11) is a service of the host, which the firewall keeps containers from. systemd-resolved
keeps the upstream servers it forwards to in a file of its own, which is read instead when
present. When the host still has only loopback name servers, containers ask their gateway,
and the worker forwards port 53 there (UDP and TCP) to the first of them (firewall.py): the
host's resolver answers containers as it answers the host, and nothing else on loopback opens.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

RESOLV_CONF = Path("/etc/resolv.conf")
RESOLVED_UPSTREAM = Path("/run/systemd/resolve/resolv.conf")
DNS_PORT = 53


@dataclass(frozen=True)
class DnsPlan:
    """How containers resolve names: the host's resolv.conf lines they keep, and the loopback
    resolver their gateway forwards to (None: they reach their name servers themselves)."""

    kept_lines: tuple[str, ...]
    forward_to: ipaddress.IPv4Address | None

    def resolv_conf(self, gateway: ipaddress.IPv4Address) -> str:
        lines = list(self.kept_lines)
        if self.forward_to is not None:
            lines.insert(0, f"nameserver {gateway}")
        return "\n".join(lines) + "\n" if lines else ""


def plan(host_resolv_conf: str) -> DnsPlan:
    """Containers keep the host's reachable name servers (search and options too); with none but
    loopback ones, they go through their gateway to the first IPv4 one."""
    kept: list[str] = []
    loopback: list[ipaddress.IPv4Address] = []
    for line in host_resolv_conf.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            try:
                address = ipaddress.ip_address(words[1].split("%")[0])
            except ValueError:
                address = None
            if address is not None and address.is_loopback:
                if isinstance(address, ipaddress.IPv4Address):
                    loopback.append(address)
                continue  # ::1 has no IPv4 path from a container: dropped
        kept.append(line)
    reachable = any(line.split()[:1] == ["nameserver"] for line in kept)
    return DnsPlan(tuple(kept), None if reachable or not loopback else loopback[0])


def read_plan(path: Path | None = None) -> DnsPlan:
    """The plan for this host's containers, from `path` (default: systemd-resolved's upstream
    file when present, else /etc/resolv.conf)."""
    source = path or (RESOLVED_UPSTREAM if RESOLVED_UPSTREAM.exists() else RESOLV_CONF)
    try:
        return plan(source.read_text())
    except OSError:
        return DnsPlan((), None)
