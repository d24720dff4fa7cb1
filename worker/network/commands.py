"""Running iproute2, nftables and iptables: one process per batch of commands, errors as NetworkError."""

from __future__ import annotations

import asyncio
import os
import subprocess


class NetworkError(Exception):
    """A container network could not be set up or changed; the message says which step and why."""


async def run(argv: list[str], stdin: str = "", *, check: bool = True) -> str:
    """Run `argv` with `stdin` (a batch: `ip -batch -`, `nft -f -`, `iptables-restore`); its stdout."""
    # In a thread, not asyncio's subprocess transport: under uvloop (the daemons' loop) that
    # raises when a command exits before it read all of its stdin, as a failing batch does.
    return await asyncio.to_thread(run_sync, argv, stdin, check=check)


def run_sync(argv: list[str], stdin: str = "", *, check: bool = True) -> str:
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        needs = "container networking needs iproute2, nftables and iptables"
        raise NetworkError(f"{argv[0]} is not installed ({needs})") from None
    if check and done.returncode:
        raise NetworkError(f"`{' '.join(argv)}` failed: {done.stderr.strip() or f'exit code {done.returncode}'}")
    return done.stdout


def write_sysctl(path: str, value: str, *, if_present: bool = False) -> None:
    """Set a /proc/sys value (no process needed); `if_present`: unless the kernel lacks it."""
    if if_present and not os.path.exists(f"/proc/sys/{path}"):
        return
    try:
        with open(f"/proc/sys/{path}", "w") as file:
            file.write(value)
    except OSError as exc:
        raise NetworkError(f"cannot set /proc/sys/{path} to {value}: {exc.strerror}") from None


def read_sysctl(path: str) -> str:
    with open(f"/proc/sys/{path}") as file:
        return file.read().strip()
