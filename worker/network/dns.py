"""The /etc/resolv.conf a container gets: the host's name servers, those it can reach.

A host resolver on loopback (systemd-resolved's 127.0.0.53, a dnsmasq on 127.0.0.1) is the
host's own service, which the firewall keeps containers from; systemd-resolved keeps the
upstream servers it forwards to in its own file, which is read instead when present.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

log = logging.getLogger(__name__)

RESOLV_CONF = Path("/etc/resolv.conf")
RESOLVED_UPSTREAM = Path("/run/systemd/resolve/resolv.conf")


def container_resolv_conf(host_resolv_conf: str) -> str:
    """`host_resolv_conf` without its loopback name servers (search and options kept)."""
    kept, dropped = [], []
    for line in host_resolv_conf.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            try:
                loopback = ipaddress.ip_address(words[1].split("%")[0]).is_loopback
            except ValueError:
                loopback = False
            if loopback:
                dropped.append(words[1])
                continue
        kept.append(line)
    if dropped and not any(line.split()[:1] == ["nameserver"] for line in kept):
        log.warning(
            "container network: the host's only name servers (%s) are on loopback, which containers "
            "cannot reach: containers resolve no names",
            ", ".join(dropped),
        )
    return "\n".join(kept) + "\n"


def read_container_resolv_conf() -> str:
    """The resolv.conf for this host's containers."""
    source = RESOLVED_UPSTREAM if RESOLVED_UPSTREAM.exists() else RESOLV_CONF
    try:
        return container_resolv_conf(source.read_text())
    except OSError:
        return ""
