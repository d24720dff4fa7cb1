"""`*.localhost` names resolve to the loopback address in every process that imports the SDK.

RFC 6761 reserves `localhost` and every name under it for the loopback interface, and stoker's
default URLs are such names (`http://ws--app-fn.localhost:8000`). curl and browsers resolve them
themselves, but glibc's getaddrinfo asks /etc/hosts and DNS, which know only `localhost` itself
(unless nsswitch.conf lists `myhostname`), so Python's HTTP clients (httpx, aiohttp, urllib)
failed on the URLs that `get_web_url()` hands out. The SDK therefore wraps `socket.getaddrinfo`
(which urllib, httpx and asyncio's default loop use) and uvloop's `Loop.getaddrinfo` (which
aiohttp and anyio use on stoker's own loop): names under `.localhost` get the address below, and
every other name, `localhost` itself included, goes to the system resolver unchanged.

It is installed when the SDK is imported (client/__init__.py), not at the first get_web_url():
a program may as well have its URL from what `stoker deploy` printed. A loop that is not
stoker's (a program's own `uvloop.run`) gets it when uvloop was imported before the SDK.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from protos import container_env as cenv

# The one place that says where `*.localhost` goes.
IPV4_ADDRESS = "127.0.0.1"
IPV6_ADDRESS = "::1"

_system_getaddrinfo = socket.getaddrinfo


def is_localhost_name(host: object) -> bool:
    """A name under `.localhost` (RFC 6761), not `localhost` itself (the system knows that one)."""
    if isinstance(host, bytes):
        host = host.decode("ascii", errors="replace")
    return isinstance(host, str) and host.rstrip(".").lower().endswith(".localhost")


def _address_for(host: Any, family: int, flags: int) -> str | None:
    """The numeric address to resolve instead of `host`; None: leave `host` to the system."""
    if not is_localhost_name(host) or flags & socket.AI_NUMERICHOST:
        return None
    # A container in a network namespace of its own (whose loopback is its own) is told its
    # gateway instead, which leads to its machine's ingresses. Read at each lookup: a forked
    # container imported the SDK in its template, before it had its environment. The gateway
    # is IPv4 only: IPv6 lookups get it IPv4-mapped.
    redirected = os.environ.get(cenv.LOCALHOST_ADDRESS)
    if redirected:
        return f"::ffff:{redirected}" if family == socket.AF_INET6 else redirected
    return IPV6_ADDRESS if family == socket.AF_INET6 else IPV4_ADDRESS


def getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[tuple[Any, ...]]:
    """socket.getaddrinfo, with names under `.localhost` resolved to the loopback address."""
    address = _address_for(host, family, flags)
    return _system_getaddrinfo(host if address is None else address, port, family, type, proto, flags)


def install() -> None:
    """Wrap socket.getaddrinfo (once), and uvloop's if the process has imported uvloop."""
    if socket.getaddrinfo is not getaddrinfo:
        socket.getaddrinfo = getaddrinfo
    if "uvloop" in sys.modules:
        install_on_uvloop()


def install_on_uvloop() -> None:
    """uvloop resolves through libuv, not socket.getaddrinfo: wrap its Loop.getaddrinfo (aiohttp,
    anyio) and, since its create_connection resolves inside libuv, that too (asyncio streams,
    websockets)."""
    import uvloop

    native: Callable[..., Any] = uvloop.Loop.getaddrinfo
    if getattr(native, "_stoker_localhost", False):
        return
    native_connect: Callable[..., Any] = uvloop.Loop.create_connection

    async def create_connection(
        self: Any, protocol_factory: Any, host: Any = None, port: Any = None, **kwargs: Any
    ) -> Any:
        address = _address_for(host, kwargs.get("family", 0), kwargs.get("flags", 0))
        if address is not None:
            if kwargs.get("ssl") and kwargs.get("server_hostname") is None:
                kwargs["server_hostname"] = host  # TLS still checks the name, not the address
            host = address
        return await native_connect(self, protocol_factory, host, port, **kwargs)

    async def loop_getaddrinfo(
        self: Any, host: Any, port: Any, *, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[tuple[Any, ...]]:
        address = _address_for(host, family, flags)
        return await native(  # type: ignore[no-any-return]
            self, host if address is None else address, port, family=family, type=type, proto=proto, flags=flags
        )

    loop_getaddrinfo._stoker_localhost = True  # type: ignore[attr-defined]
    uvloop.Loop.getaddrinfo = loop_getaddrinfo  # type: ignore[method-assign]
    uvloop.Loop.create_connection = create_connection  # type: ignore[method-assign]
