"""Container processes: start one for a function of an app version, watch it, stop it.

A container is forked from the pre-imported template of its image (or of the worker's own
environment) when the worker gave it one that is running (fast), else started as a fresh
interpreter. Either way it is its own session and process group, with the code bundle as working
directory, and it writes its serving address to a ready pipe.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from protos import container_env as cenv
from protos import stoker_pb2 as pb
from worker import image_launch
from worker.config import WorkerConfig
from worker.images import BuiltImage
from worker.inherited_env import inherited_environment
from worker.output import forward_lines
from worker.redact import Redactor, secret_values
from worker.template_client import ForkTemplate, TemplateError, wait_exit

log = logging.getLogger(__name__)

OUTPUT_TAIL_LINES = 30


READY_MARGIN = 30.0  # seconds a container's start may take beyond its startup_timeout (imports)


class ContainerFailed(Exception):
    """The container exited or timed out before it was ready."""


class ContainerProcess:
    def __init__(
        self,
        command: pb.StartContainer,
        directory: Path,
        config: WorkerConfig,
        image: BuiltImage | None,
        template: ForkTemplate | None,
        on_output: Callable[[pb.LogLine], None],
    ) -> None:
        self.command = command
        self.id = command.container_id
        self.directory = directory
        self.config = config
        self.image = image  # None: the worker's own environment
        self.template = template  # one started with the image's interpreter; None: start fresh
        self.pid = 0
        self.output_tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
        self._exit: asyncio.Future[int] | None = None
        self._output_task: asyncio.Task[None] | None = None
        self.on_output = on_output  # each line it prints, secrets hidden, for the scheduler
        self._redact = Redactor(secret_values(command.env))

    def _environment(self) -> dict[str, str]:
        return container_environment(self.command, self.config, self.image, self.directory)

    async def _launch(self, env: dict[str, str], output_fd: int, ready_fd: int) -> None:
        if self.template is not None and self.template.alive:
            try:
                self.pid, conn = await self.template.fork(self.directory, env, output_fd, ready_fd)
                self._exit = asyncio.ensure_future(wait_exit(conn))
                return
            except TemplateError as exc:
                log.warning("%s; starting %s as a new process instead", exc, self.id)
        if self.image is not None:
            argv = image_launch.container_argv(self.image, self.config.work_dir, self.id, self.directory)
        else:
            argv = [sys.executable, "-m", "worker.runtime"]
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=self.directory,
            env={**env, cenv.READY_FD: str(ready_fd)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output_fd,
            stderr=output_fd,
            pass_fds=(ready_fd,),
            start_new_session=True,  # its own process group, stopped as one
        )
        self.pid = process.pid
        self._exit = asyncio.ensure_future(process.wait())

    async def start(self) -> str:
        """Start the container and wait until it serves; return its address."""
        output_r, output_w = os.pipe()
        ready_r, ready_w = os.pipe()
        try:
            await self._launch(self._environment(), output_w, ready_w)
        except BaseException:
            os.close(output_r)
            os.close(ready_r)
            raise
        finally:
            os.close(output_w)
            os.close(ready_w)
        self._output_task = asyncio.create_task(self._forward_output(output_r), name=f"output-{self.id}")
        assert self._exit is not None
        ready = asyncio.create_task(asyncio.to_thread(_read_line, ready_r), name=f"ready-{self.id}")
        waiters: set[asyncio.Future[Any]] = {ready, self._exit}
        # The container bounds its own @modal.enter hooks by its startup_timeout and says why it
        # failed; this bound is for a start that hangs before it can (an import).
        ready_timeout = max(self.config.container_ready_timeout, self.command.function.startup_timeout + READY_MARGIN)
        done, _ = await asyncio.wait(waiters, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED)
        if ready in done and ready.result():
            return ready.result()
        await self.stop(grace=1)
        await self._drain_output()
        if not done:
            raise ContainerFailed(f"not ready within {ready_timeout:g} s")
        code = self._exit.result() if self._exit.done() else -1
        raise ContainerFailed(f"exited with code {code} before serving:\n" + self.tail())

    def tail(self) -> str:
        return "\n".join(self.output_tail)

    async def _forward_output(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        try:
            await forward_lines(reader, self._output_line)
        finally:
            transport.close()

    def _output_line(self, text: str) -> None:
        line = self._redact(text)
        self.output_tail.append(line)
        log.info("[%s.%s %s] %s", self.command.app_name, self.command.function.name, self.id, line)
        self.on_output(
            pb.LogLine(
                app_id=self.command.app_id,
                function=self.command.function.name,
                container_id=self.id,
                time=time.time(),
                text=line,
            )
        )

    async def _drain_output(self) -> None:
        if self._output_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._output_task), 2)

    async def wait(self) -> int:
        assert self._exit is not None
        code = await self._exit
        await self._drain_output()
        return code

    async def stop(self, grace: float) -> None:
        """SIGTERM the process group, SIGKILL what is left after `grace` seconds."""
        if self._exit is None or self._exit.done():
            _signal_group(self.pid, signal.SIGKILL)  # children the app left behind
            return
        _signal_group(self.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self._exit), grace)
        except TimeoutError:
            _signal_group(self.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._exit), 5)
        _signal_group(self.pid, signal.SIGKILL)

    def remove_directory(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        shutil.rmtree(image_launch.own_dir(self.config.work_dir, self.id), ignore_errors=True)


def container_environment(
    command: pb.StartContainer, config: WorkerConfig, image: BuiltImage | None, directory: Path
) -> dict[str, str]:
    """The environment of `command`'s container, whose code bundle is at `directory`."""
    env = inherited_environment()  # as its template's: fresh and forked containers see the same
    env.update(command.env)
    if image is not None:
        env.update(image.environment(env))  # the image's PATH, the runtime on PYTHONPATH, its env steps
        if image.workdir:
            env[cenv.WORKDIR] = image.workdir
    else:
        # `python` in commands the app runs (a @web_server's `python -m http.server`) is the
        # container's own interpreter, the one with the app's packages.
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", os.defpath)])
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            cenv.CONTAINER_ID: command.container_id,
            cenv.APP_NAME: command.app_name,
            cenv.ENTRY: str(directory / command.entry),
            cenv.FUNCTION: command.function.name,
            cenv.BIND_HOST: config.bind_host,
            cenv.ADVERTISE_HOST: config.advertise_host,
            # Where the container's code sends function calls; the scheduler gave it a
            # credential for them (cenv.TOKEN, in command.env).
            cenv.SCHEDULER: config.scheduler,
            # Only the devices the scheduler gave this container; none hides them all.
            "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in command.gpu_indices),
        }
    )
    return env


def _signal_group(pid: int, sig: signal.Signals) -> None:
    if pid <= 0:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _read_line(fd: int) -> str:
    with os.fdopen(fd, "rb") as pipe:
        return pipe.readline().decode().strip()
