"""Which subnet a worker's bridge gets when the operator names none, and who owns each bridge.

Every sandboxed worker has a container network by default, and one machine may run several
workers (`stoker up --workers 2`, a test suite's clusters side by side). So a worker with no
`--container-subnet` claims the first /20 of AUTO_POOL that no interface address or route of
the host overlaps, under a machine-wide lock held until its bridge has the address: two workers
starting at once never pick the same one.

Each bridge carries its owner in its interface alias (pid, PID namespace, tag). A worker that
was killed leaves its bridge and rules behind; the next worker to claim a subnet removes those
of owners that are gone, so their subnets come back. Only owners in the claimer's own PID
namespace are judged: a pid of another namespace means nothing here.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from worker.network import bridge, firewall
from worker.network.commands import NetworkError, run
from worker.network.names import NetworkNames

log = logging.getLogger(__name__)

AUTO_POOL = ipaddress.IPv4Network("10.88.0.0/13")  # 10.88.0.0 to 10.95.255.255: 128 subnets
AUTO_PREFIX = 20  # 4,094 containers per worker
LOCK_FILE = Path("/run/stoker/subnets.lock")
ALIAS_PREFIX = "stoker worker"


@dataclass(frozen=True)
class Owner:
    """Who made a bridge, as its alias says."""

    pid: int
    pid_namespace: str
    tag: str

    def alias(self) -> str:
        return f"{ALIAS_PREFIX} pid={self.pid} pidns={self.pid_namespace} tag={self.tag}"

    @classmethod
    def parse(cls, alias: str) -> Owner | None:
        if not alias.startswith(ALIAS_PREFIX + " "):
            return None
        fields = dict(word.split("=", 1) for word in alias.split()[2:] if "=" in word)
        try:
            return cls(int(fields["pid"]), fields["pidns"], fields["tag"])
        except (KeyError, ValueError):
            return None

    def is_gone(self) -> bool:
        """Whether the process that made the bridge has exited (False when it cannot be told)."""
        if self.pid_namespace != own_pid_namespace():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def own_pid_namespace() -> str:
    return os.readlink("/proc/self/ns/pid")


def owner_of_this_process(names: NetworkNames) -> Owner:
    return Owner(os.getpid(), own_pid_namespace(), names.tag)


@contextlib.asynccontextmanager
async def machine_lock() -> AsyncIterator[None]:
    """Held while a worker chooses its subnet and puts it on its bridge."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


async def remove_abandoned(keep: NetworkNames) -> None:
    """Remove the bridges, veths and rules of workers that exited without removing them."""
    for link in await bridge.links():
        owner = Owner.parse(str(link.get("ifalias", "")))
        name = str(link.get("ifname", ""))
        if owner is None or name == keep.bridge or not owner.is_gone():
            continue
        names = NetworkNames(tag=owner.tag, bridge=name, worker="")
        log.info("container network: removing bridge %s, left by worker pid %d", name, owner.pid)
        await firewall.remove(names)
        await bridge.remove(names)


async def taken_networks(ignore: str) -> list[ipaddress.IPv4Network]:
    """The IPv4 networks the host's interfaces (but `ignore`) and routes already use."""
    taken: list[ipaddress.IPv4Network] = []
    for link in json.loads(await run(["ip", "-json", "-4", "addr", "show"]) or "[]"):
        if link.get("ifname") == ignore:
            continue
        for info in link.get("addr_info", []):
            taken.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    for route in json.loads(await run(["ip", "-json", "-4", "route", "show", "table", "all"]) or "[]"):
        destination = str(route.get("dst", "default"))
        if destination == "default" or route.get("dev") == ignore:
            continue
        with contextlib.suppress(ValueError):
            network = ipaddress.IPv4Network(destination, strict=False)
            if network.prefixlen > 0 and not network.is_loopback:
                taken.append(network)
    return taken


def first_free(taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    for candidate in AUTO_POOL.subnets(new_prefix=AUTO_PREFIX):
        if not any(candidate.overlaps(other) for other in taken):
            return candidate
    raise NetworkError(
        f"every /{AUTO_PREFIX} of {AUTO_POOL} is in use on this host: give this worker a --container-subnet"
    )
