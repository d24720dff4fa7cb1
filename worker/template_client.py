"""The worker's side of the fork template: start it, ask it for containers."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import shutil
import signal
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from worker.inherited_env import inherited_environment
from worker.output import forward_lines
from worker.runtime.template import GO
from worker.sandbox.launch import launcher_command
from worker.sandbox.layout import inside_environment
from worker.sandbox.spec import Rooting, SandboxSpec

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
RETRY_AFTER = 30.0  # seconds between starts of one key's template (see TemplatePool)
OWN_ENVIRONMENT = ""  # the pool's key for the worker's own interpreter: as a container's empty image_id


class TemplateError(Exception):
    """The template could not start or could not fork a container."""


class ForkTemplate:
    """A running `python -m worker.runtime.template` process.

    By default it runs in the environment every app's process inherits, with its output on the
    worker's; a memory snapshot's (worker/snapshots.py) gives its own `env`, `cwd` and `args`,
    and `output`, which gets each line the template prints (the app's, while it imports) and
    whose last lines say why, when it does not start."""

    def __init__(
        self,
        socket_path: Path,
        python: str = sys.executable,
        *,
        args: Sequence[str] = (),
        prefix: Sequence[str] = (),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        output: Callable[[str], None] | None = None,
        start_timeout: float = START_TIMEOUT,
        name: str = "the fork template",
        sandbox: SandboxSpec | None = None,
    ) -> None:
        self.name = name  # what its errors call it
        self.socket_path = socket_path
        self.python = python  # an image's venv interpreter, or the worker's own
        self.args = tuple(args)
        self.prefix = tuple(prefix)  # what starts it inside an image (worker/image_launch.py); empty: none
        # Not the worker's environment: the cluster secret would stay readable in this process's
        # /proc/<pid>/environ, and in every container forked from it.
        self.env = env if env is not None else inherited_environment()
        self.cwd = cwd
        self.output = output
        self.start_timeout = start_timeout
        # Its own sandbox, from which its containers make theirs; None: it runs on the host.
        self.sandbox = sandbox
        if sandbox is not None:
            self.env = inside_environment(self.env)
        self.process: asyncio.subprocess.Process | None = None
        self.output_tail: collections.deque[str] = collections.deque(maxlen=30)
        self._output_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.socket_path.unlink(missing_ok=True)
        command = [self.python, "-m", "worker.runtime.template", str(self.socket_path), *self.args]
        listener: socket.socket | None = None
        if self.sandbox is not None:
            # Bound here, outside the sandbox, and handed over: the template cannot see this path.
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(self.socket_path))
            listener.listen(64)
            command[3] = f"fd:{listener.fileno()}"
            command = launcher_command(self.sandbox, command)
        else:  # the image's launcher (worker/image_launch.py), if any
            command = [*self.prefix, *command]
        try:
            self.process = await asyncio.create_subprocess_exec(
                *command,
                env=self.env,
                cwd=self.cwd if self.sandbox is None else None,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE if self.output is not None else None,
                pass_fds=(listener.fileno(),) if listener is not None else (),
            )
        except OSError as exc:  # no such interpreter, or not executable
            raise TemplateError(f"{self.name} did not start ({self.python}: {exc.strerror})") from None
        finally:
            if listener is not None:
                listener.close()
        assert self.process.stdout is not None
        if self.process.stderr is not None:
            self._output_task = asyncio.create_task(
                forward_lines(self.process.stderr, self._on_output), name=f"output-{self.socket_path.name}"
            )
        ready = timed_out = False
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), self.start_timeout)
            ready = line.strip() == b"ready"
            if not line:
                # It is exiting: wait for its own exit code, which says why. A SIGTERM now would
                # reap it behind asyncio's back (Popen.send_signal polls first): the code reads 255.
                await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            timed_out = True  # stopped below
        finally:
            if not ready:  # also when cancelled: a half-started template is not left running
                await self.stop()
        if not ready:
            why = f"not ready within {self.start_timeout:g} s" if timed_out else f"exit code {self.process.returncode}"
            raise TemplateError(
                f"{self.name} did not start ({why})" + "".join(f"\n{line}" for line in self.output_tail)
            )

    def _on_output(self, line: str) -> None:
        self.output_tail.append(line)
        if self.output is not None:
            self.output(line)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def fork(
        self,
        cwd: Path | str,
        env: dict[str, str],
        output_fd: int,
        ready_fd: int,
        sandbox: Rooting | None = None,
        before_start: Callable[[int], Awaitable[None]] | None = None,
    ) -> tuple[int, socket.socket]:
        """Fork a container (into its own sandbox, `sandbox`, made from the template's); return
        its pid and the connection on which its exit code arrives. `before_start(pid)` runs while
        the child waits, before any of the app's code (it puts the child in its cgroup, its
        network namespace on the bridge); when it
        raises, the child exits at once and so does the error."""
        fields: dict[str, object] = {"cwd": str(cwd), "env": env}
        if sandbox is not None:
            fields["sandbox"] = sandbox.to_json()
        request = json.dumps(fields).encode()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if sandbox is not None:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        try:
            await asyncio.to_thread(self._handshake, conn, request, output_fd, ready_fd)
            line, sender = await asyncio.to_thread(_read_reply, conn)
            reply = json.loads(line)
            if sandbox is not None and "pid" in reply:
                # The template's pid namespace is its own: the child sent its pid as the kernel
                # translates it for us.
                if sender is None:
                    raise ValueError("the forked child sent no credentials")
                reply["pid"] = sender
        except (OSError, ValueError) as exc:
            conn.close()
            raise TemplateError(f"the fork template failed: {exc}") from None
        if "pid" not in reply:
            conn.close()
            raise TemplateError(f"the fork template failed: {reply.get('error', reply)}")
        pid = int(reply["pid"])
        try:
            if before_start is not None:
                await before_start(pid)
        except BaseException:
            conn.close()  # the child reads the end of the connection, not GO, and exits
            raise
        try:
            conn.sendall(GO)
        except OSError as exc:
            conn.close()
            raise TemplateError(f"the fork template failed: {exc}") from None
        return pid, conn

    def _handshake(self, conn: socket.socket, request: bytes, output_fd: int, ready_fd: int) -> None:
        conn.connect(str(self.socket_path))
        socket.send_fds(conn, [request], [output_fd, ready_fd])

    def retire(self) -> None:
        """Fork no more containers; exit once those forked from it have (a stop ends them too)."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGUSR1)

    async def stop(self) -> None:
        try:
            if self.process is None or self.process.returncode is not None:
                return
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        finally:
            if self._output_task is not None:  # its last lines first, which say why it stopped
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._output_task), 2)
                self._output_task.cancel()
            with contextlib.suppress(OSError):
                self.socket_path.unlink()
            if self.sandbox is not None and self.process is not None and self.process.returncode is not None:
                shutil.rmtree(self.sandbox.state_dir, ignore_errors=True)  # its containers died with it


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

    A memory snapshot's template (`snapshot`) is kept under a key of its own, with the policy
    that suits it: see there.
    """

    def __init__(self, directory: Path, *, enabled: bool = True, retry_after: float = RETRY_AFTER) -> None:
        self.directory = directory
        self.enabled = enabled  # False (`--no-fork`): no templates; every container starts fresh
        self.retry_after = retry_after
        self._starts: dict[str, _Start] = {}  # each key's latest start; earlier ones are dead
        self._retired: list[asyncio.Task[ForkTemplate | TemplateError]] = []  # exiting once their containers have
        self._stopped = False

    async def get(
        self, key: str, python: str, make: Callable[[Path], ForkTemplate] | None = None
    ) -> ForkTemplate | None:
        """The running template for `key`, started with `python` (or made by `make`, given the
        socket path the pool would use); None: start the container fresh."""
        make = make or (lambda path: ForkTemplate(path, python))
        if not self.enabled or self._stopped:
            return None
        what = f"image {key}" if key != OWN_ENVIRONMENT else "the worker's own environment"
        what += "; its containers start as new processes meanwhile"
        start = self._starts.get(key)
        if start is None:
            start = self._begin(key, make, what, restart=False)
        elif start.task.done():
            template = start.task.result()
            if isinstance(template, ForkTemplate) and template.alive:
                return template
            if time.monotonic() - start.began >= self.retry_after:
                self._begin(key, make, what, restart=True)
            return None
        if start.restart:
            return None
        result = await asyncio.shield(start.task)  # a container given up on does not stop the start
        return result if isinstance(result, ForkTemplate) else None

    async def snapshot(self, key: str, make: Callable[[Path], ForkTemplate], what: str) -> ForkTemplate | None:
        """The running template of a memory snapshot, `key`, made by `make` (given its socket's
        path) at its first request; None when templates are off (every hook then runs in the
        container). TemplateError, saying why, while the key's last start failed (or its template
        died) less than `retry_after` ago.

        Every request waits for the start, and for a restart too: a container started fresh
        instead would do the same work (import the app, run its snap=True hooks), and the hooks
        run once per worker, not once per container that came meanwhile. A failure is given to
        each request for `retry_after` seconds, so that a hook that raises costs one run per
        `retry_after`, not one per container."""
        if not self.enabled or self._stopped:
            return None
        start = self._starts.get(key)
        if start is not None and start.task.done():
            result = start.task.result()
            if isinstance(result, ForkTemplate) and result.alive:
                return result
            if time.monotonic() - start.began < self.retry_after:
                if isinstance(result, TemplateError):
                    raise result
                code = result.process.returncode if result.process is not None else None
                raise TemplateError(f"its memory snapshot's template exited (code {code})")
            start = None
        if start is None:
            start = self._begin(key, make, what, restart=False)
        result = await asyncio.shield(start.task)
        if isinstance(result, TemplateError):
            raise result
        return result

    def retire(self, key: str) -> Callable[[], bool]:
        """Forget `key`'s template: it forks no more and exits once its containers have. Returns
        whether it has exited (or never started)."""
        start = self._starts.pop(key, None)
        if start is None:
            return lambda: True
        self._retired = [t for t in self._retired if not t.done() or _alive(t)]
        self._retired.append(start.task)
        start.task.add_done_callback(_retire_started)
        task = start.task
        return lambda: task.done() and not _alive(task)

    def _begin(self, key: str, make: Callable[[Path], ForkTemplate], what: str, *, restart: bool) -> _Start:
        task = asyncio.create_task(self._start(key, make, what), name=f"template-{key or 'worker'}")
        start = _Start(task, time.monotonic(), restart)
        self._starts[key] = start
        return start

    async def _start(self, key: str, make: Callable[[Path], ForkTemplate], what: str) -> ForkTemplate | TemplateError:
        # Short names: a Unix socket path holds at most 107 bytes.
        name = f"t-{key[-12:]}.sock" if key != OWN_ENVIRONMENT else "template.sock"
        template = make(self.directory / name)
        try:
            await template.start()
        except TemplateError as exc:
            log.warning("%s (%s)", exc, what)
            return exc
        except Exception as exc:
            log.exception("the fork template for %s failed", what)
            return TemplateError(f"the fork template failed: {exc!r}")
        return template

    async def stop(self) -> None:
        """Stop every template, and start no more (requests waiting on a start are cancelled with it)."""
        self._stopped = True
        tasks = [start.task for start in self._starts.values()] + self._retired
        for task in tasks:
            task.cancel()  # a start under way stops its process
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(t.stop() for t in results if isinstance(t, ForkTemplate)), return_exceptions=True)


@dataclass(frozen=True)
class _Start:
    task: asyncio.Task[ForkTemplate | TemplateError]  # the template, or why it did not start
    began: float  # time.monotonic()
    restart: bool  # requests do not wait for a restart: they start fresh until it is ready


def _retire_started(task: asyncio.Task[ForkTemplate | TemplateError]) -> None:
    if _alive(task):
        template = task.result()
        assert isinstance(template, ForkTemplate)
        template.retire()


def _alive(task: asyncio.Task[ForkTemplate | TemplateError]) -> bool:
    """Whether a finished start gave a template that is still running."""
    if task.cancelled():
        return False
    result = task.result()
    return isinstance(result, ForkTemplate) and result.alive


def _read_reply(conn: socket.socket) -> tuple[bytes, int | None]:
    """The first line on `conn`, and the pid of its sender when it sent credentials."""
    data = b""
    sender: int | None = None
    while not data.endswith(b"\n"):
        chunk, ancillary, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(12))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= 12:
                sender = struct.unpack("3i", payload[:12])[0]
        if not chunk:
            break
        data += chunk
    return data, sender


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
