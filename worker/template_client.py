"""The worker's side of the fork template: start it, ask it for containers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from worker.inherited_env import inherited_environment

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
RETRY_AFTER = 30.0  # seconds between starts of one key's template (see TemplatePool)
OWN_ENVIRONMENT = ""  # the pool's key for the worker's own interpreter: as a container's empty image_id


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
        try:
            self.process = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "worker.runtime.template",
                str(self.socket_path),
                # Not the worker's environment: the cluster secret would stay readable in this
                # process's /proc/<pid>/environ, and in every container forked from it.
                env=inherited_environment(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
            )
        except OSError as exc:  # no such interpreter, or not executable
            raise TemplateError(f"the fork template did not start ({self.python}: {exc.strerror})") from None
        assert self.process.stdout is not None
        ready = False
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), START_TIMEOUT)
            ready = line.strip() == b"ready"
            if not line:
                # It is exiting: wait for its own exit code, which says why. A SIGTERM now would
                # reap it behind asyncio's back (Popen.send_signal polls first): the code reads 255.
                await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            pass  # not ready in time: stopped below
        finally:
            if not ready:  # also when cancelled: a half-started template is not left running
                await self.stop()
        if not ready:
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
    """The worker's fork templates, one per image and one for its own interpreter (`OWN_ENVIRONMENT`).

    A key's first request starts its template and waits for it (so do requests arriving during
    that start): the worker's own at startup and an image's when a deploy builds it, so a
    container rarely waits. One policy covers a template that died and one that failed to start:
    it is not alive, and the next request after `retry_after` seconds from the key's last start
    begins a new start in the background; until that one is ready, containers start as fresh
    interpreters (about 340 ms, less than a template's start). So no container waits on a
    restart, and a broken interpreter costs one start per `retry_after`, not one per container
    (each start imports FastAPI and gRPC; a hung one holds START_TIMEOUT). A template that died
    after a long life restarts at its next request.
    """

    def __init__(self, directory: Path, *, enabled: bool = True, retry_after: float = RETRY_AFTER) -> None:
        self.directory = directory
        self.enabled = enabled  # False (`--no-fork`): no templates; every container starts fresh
        self.retry_after = retry_after
        self._starts: dict[str, _Start] = {}  # each key's latest start; earlier ones are dead
        self._stopped = False

    async def get(self, key: str, python: str) -> ForkTemplate | None:
        """The running template for `key`, started with `python`; None: start the container fresh."""
        if not self.enabled or self._stopped:
            return None
        start = self._starts.get(key)
        if start is None:
            start = self._begin(key, python, restart=False)
        elif start.task.done():
            template = None if start.task.cancelled() else start.task.result()
            if template is not None and template.alive:
                return template
            if time.monotonic() - start.began >= self.retry_after:
                self._begin(key, python, restart=True)
            return None
        if start.restart:
            return None
        return await asyncio.shield(start.task)  # a container given up on does not stop the start

    def _begin(self, key: str, python: str, *, restart: bool) -> _Start:
        task = asyncio.create_task(self._start(key, python), name=f"template-{key or 'worker'}")
        start = _Start(task, time.monotonic(), restart)
        self._starts[key] = start
        return start

    async def _start(self, key: str, python: str) -> ForkTemplate | None:
        # Short names: a Unix socket path holds at most 107 bytes.
        name = f"t-{key[-12:]}.sock" if key != OWN_ENVIRONMENT else "template.sock"
        template = ForkTemplate(self.directory / name, python)
        what = f"image {key}" if key != OWN_ENVIRONMENT else "the worker's own environment"
        try:
            await template.start()
        except TemplateError as exc:
            log.warning("%s (%s); its containers start as new processes meanwhile", exc, what)
            return None
        except Exception:
            log.exception("the fork template for %s failed; its containers start as new processes", what)
            return None
        return template

    async def stop(self) -> None:
        """Stop every template, and start no more (requests waiting on a start are cancelled with it)."""
        self._stopped = True
        tasks = [start.task for start in self._starts.values()]
        for task in tasks:
            task.cancel()  # a start under way stops its process
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(t.stop() for t in results if isinstance(t, ForkTemplate)), return_exceptions=True)


@dataclass(frozen=True)
class _Start:
    task: asyncio.Task[ForkTemplate | None]  # the template, or None when it failed to start
    began: float  # time.monotonic()
    restart: bool  # requests do not wait for a restart: they start fresh until it is ready


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
