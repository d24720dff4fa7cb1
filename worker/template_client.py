"""The worker's side of the fork template: start it, ask it for containers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
from pathlib import Path

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0


class TemplateError(Exception):
    """The template could not start or could not fork a container."""


class ForkTemplate:
    """A running `python -m worker.runtime.template` process."""

    def __init__(self, socket_path: Path, python: str = sys.executable) -> None:
        self.socket_path = socket_path
        self.python = python  # an image's venv interpreter, or the worker's own
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.socket_path.unlink(missing_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            self.python,
            "-m",
            "worker.runtime.template",
            str(self.socket_path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), START_TIMEOUT)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            await self.stop()
            raise TemplateError(f"the fork template did not start (exit code {self.process.returncode})")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def fork(self, cwd: Path, env: dict[str, str], output_fd: int, ready_fd: int) -> tuple[int, socket.socket]:
        """Fork a container; return its pid and the connection on which its exit code arrives."""
        request = json.dumps({"cwd": str(cwd), "env": env}).encode()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await asyncio.to_thread(self._handshake, conn, request, output_fd, ready_fd)
            reply = json.loads(await asyncio.to_thread(_read_line, conn))
        except (OSError, ValueError) as exc:
            conn.close()
            raise TemplateError(f"the fork template failed: {exc}") from None
        if "pid" not in reply:
            conn.close()
            raise TemplateError(f"the fork template failed: {reply.get('error', reply)}")
        return int(reply["pid"]), conn

    def _handshake(self, conn: socket.socket, request: bytes, output_fd: int, ready_fd: int) -> None:
        conn.connect(str(self.socket_path))
        socket.send_fds(conn, [request], [output_fd, ready_fd])

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        with contextlib.suppress(OSError):
            self.socket_path.unlink()


class TemplatePool:
    """One template per image, started when its first container needs it and shared after."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._templates: dict[str, asyncio.Task[ForkTemplate | None]] = {}

    async def get(self, key: str, python: str) -> ForkTemplate | None:
        """The running template for `key` (None when it cannot start: containers then start fresh)."""
        task = self._templates.get(key)
        if task is None or (task.done() and not _alive(task)):
            task = asyncio.create_task(self._start(key, python), name=f"template-{key}")
            self._templates[key] = task
        return await asyncio.shield(task)

    async def _start(self, key: str, python: str) -> ForkTemplate | None:
        # Short names: a Unix socket path holds at most 107 bytes.
        template = ForkTemplate(self.directory / f"t-{key[-12:]}.sock", python)
        try:
            await template.start()
        except TemplateError as exc:
            log.warning("%s (image %s); its containers will start as new processes", exc, key)
            return None
        return template

    async def stop(self) -> None:
        for task in self._templates.values():
            task.cancel()
        results = await asyncio.gather(*self._templates.values(), return_exceptions=True)
        await asyncio.gather(*(t.stop() for t in results if isinstance(t, ForkTemplate)), return_exceptions=True)


def _alive(task: asyncio.Task[ForkTemplate | None]) -> bool:
    if task.cancelled() or task.exception() is not None:
        return False
    template = task.result()
    return template is None or template.alive


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


async def wait_exit(conn: socket.socket) -> int:
    """The exit code the template reports for a forked container (-1 if the template died)."""
    conn.setblocking(False)
    reader, writer = await asyncio.open_unix_connection(sock=conn)
    try:
        line = await reader.readline()
    finally:
        writer.close()
    try:
        return int(json.loads(line)["exit"])
    except (ValueError, KeyError):
        return -1
