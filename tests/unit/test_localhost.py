"""The SDK's `*.localhost` resolution (client/localhost.py): names under `.localhost` go to the
loopback address on every resolver Python's HTTP clients use; every other name to the system."""

from __future__ import annotations

import asyncio
import socket

import pytest

import client  # noqa: F401  (importing the SDK installs it)
from client import localhost
from client.event_loop import run_on_fastest_loop


@pytest.mark.parametrize("name", ["ws--app-fn.localhost", "A.B.LOCALHOST", "x.localhost.", b"x.localhost"])
def test_names_under_localhost_resolve_to_loopback(name: str | bytes) -> None:
    found = socket.getaddrinfo(name, 8000, type=socket.SOCK_STREAM)
    assert [info[4] for info in found] == [(localhost.IPV4_ADDRESS, 8000)]


def test_ipv6_asked_for_gets_the_ipv6_loopback() -> None:
    found = socket.getaddrinfo("x.localhost", "http", socket.AF_INET6, socket.SOCK_STREAM)
    assert [info[4][:2] for info in found] == [(localhost.IPV6_ADDRESS, 80)]


def test_other_names_are_the_systems() -> None:
    assert not localhost.is_localhost_name("localhost")
    assert not localhost.is_localhost_name("notlocalhost")
    assert not localhost.is_localhost_name("localhost.example.com")
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("stoker-test.invalid", 80)
    with pytest.raises(socket.gaierror):  # a numeric-only lookup of a name fails, as it must
        socket.getaddrinfo("x.localhost", 80, flags=socket.AI_NUMERICHOST)


@pytest.mark.parametrize("on_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_event_loops_resolve_them_too(on_uvloop: bool) -> None:
    async def resolve() -> list[object]:
        found = await asyncio.get_running_loop().getaddrinfo("x.localhost", 80, type=socket.SOCK_STREAM)
        return [info[4] for info in found]

    run = run_on_fastest_loop if on_uvloop else asyncio.run
    assert run(resolve()) == [(localhost.IPV4_ADDRESS, 80)]


@pytest.mark.parametrize("on_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_asyncio_streams_connect_to_them(on_uvloop: bool) -> None:
    async def connect() -> bytes:
        async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"hello\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(greet, localhost.IPV4_ADDRESS, 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("ws--app-fn.localhost", port)
            line = await reader.readline()
            writer.close()
            return line

    run = run_on_fastest_loop if on_uvloop else asyncio.run
    assert run(connect()) == b"hello\n"
