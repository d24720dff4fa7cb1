"""Say once when this machine cannot resolve the `*.localhost` names the ingress routes.

RFC 6761 puts every name under `localhost` on the loopback address. curl, browsers and programs
that import stoker's SDK resolve them themselves, but other programs ask glibc, which with
`hosts: files dns` in /etc/nsswitch.conf does not: they fail on the cluster's URLs. The check
asks the system resolver (never the SDK's wrapper of socket.getaddrinfo, which the CLI process
has installed), off the event loop since a DNS server may be slow to say no.
"""

from __future__ import annotations

import _socket
import asyncio
import logging

from protos import stoker_pb2 as pb

log = logging.getLogger(__name__)

FIX = (
    "install libnss-myhostname (Debian, Ubuntu; part of systemd elsewhere) and add `myhostname` to the "
    "`hosts:` line of /etc/nsswitch.conf (e.g. `hosts: files myhostname dns`)"
)


def system_resolves(host: str) -> bool:
    try:
        _socket.getaddrinfo(host, None)
    except OSError:
        return False
    return True


class LocalhostCheck:
    """Checks the first `*.localhost` host of a route table, once per process."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def routes(self, table: pb.RouteTable) -> None:
        if self._task is not None:
            return
        host = next((h for route in table.routes for h in route.hosts if h.endswith(".localhost")), None)
        if host is not None:
            self._task = asyncio.create_task(self._check(host), name="localhost-check")

    async def _check(self, host: str) -> None:
        if not await asyncio.to_thread(system_resolves, host):
            log.warning(
                "%s does not resolve on this machine: programs that do not import stoker's SDK cannot reach "
                "`*.localhost` URLs (curl and browsers can); to fix it, %s",
                host,
                FIX,
            )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
