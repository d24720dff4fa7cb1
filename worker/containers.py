"""Container processes: start one for a function of an app version, watch it, stop it."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import shutil
import signal
import sys
from pathlib import Path

from protos import stoker_pb2 as pb
from worker.config import WorkerConfig

log = logging.getLogger(__name__)

OUTPUT_TAIL_LINES = 30


class ContainerFailed(Exception):
    """The container exited or timed out before it was ready."""


class ContainerProcess:
    """One container: a process group with its own working directory holding the code bundle."""

    def __init__(self, command: pb.StartContainer, directory: Path, config: WorkerConfig) -> None:
        self.command = command
        self.id = command.container_id
        self.directory = directory
        self.config = config
        self.process: asyncio.subprocess.Process | None = None
        self.output_tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
        self._output_task: asyncio.Task[None] | None = None

    def _environment(self, ready_fd: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOKER_")}
        env.update(self.command.env)
        env.update(self.command.function.image.env)
        env.update(
            PYTHONUNBUFFERED="1",
            STOKER_CONTAINER_ID=self.id,
            STOKER_APP_NAME=self.command.app_name,
            STOKER_ENTRY=str(self.directory / self.command.entry),
            STOKER_FUNCTION=self.command.function.name,
            STOKER_BIND_HOST=self.config.bind_host,
            STOKER_ADVERTISE_HOST=self.config.advertise_host,
            STOKER_READY_FD=str(ready_fd),
            CUDA_VISIBLE_DEVICES=",".join(str(i) for i in self.command.gpu_indices),
        )
        return env

    async def start(self) -> str:
        """Start the process and wait until it serves; return its address."""
        read_fd, write_fd = os.pipe()
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "worker.runtime",
                cwd=self.directory,
                env=self._environment(write_fd),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                pass_fds=(write_fd,),
                start_new_session=True,  # its own process group, stopped as one
            )
        finally:
            os.close(write_fd)
        self._output_task = asyncio.create_task(self._forward_output(), name=f"output-{self.id}")
        ready = asyncio.create_task(asyncio.to_thread(_read_line, read_fd), name=f"ready-{self.id}")
        exited = asyncio.create_task(self.process.wait(), name=f"wait-{self.id}")
        done, _ = await asyncio.wait(
            {ready, exited}, timeout=self.config.container_ready_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ready in done and ready.result():
            exited.cancel()
            return ready.result()
        exited.cancel()
        await self.stop(grace=1)
        if self._output_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._output_task, 2)
        if not done:
            raise ContainerFailed(f"not ready within {self.config.container_ready_timeout:g} s")
        raise ContainerFailed(f"exited with code {self.process.returncode} before serving:\n" + self.tail())

    def tail(self) -> str:
        return "\n".join(self.output_tail)

    async def _forward_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        prefix = f"[{self.command.app_name}.{self.command.function.name} {self.id}]"
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.output_tail.append(line)
            log.info("%s %s", prefix, line)

    async def wait(self) -> int:
        assert self.process is not None
        code = await self.process.wait()
        if self._output_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._output_task, 2)
        return code

    async def stop(self, grace: float) -> None:
        """SIGTERM the process group, SIGKILL what is left after `grace` seconds."""
        if self.process is None or self.process.returncode is not None:
            return
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), grace)
        except TimeoutError:
            _signal_group(self.process.pid, signal.SIGKILL)
            await self.process.wait()
        # Children the app left behind (servers it started) go with the group.
        _signal_group(self.process.pid, signal.SIGKILL)

    def remove_directory(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _read_line(fd: int) -> str:
    with os.fdopen(fd, "rb") as pipe:
        return pipe.readline().decode().strip()
