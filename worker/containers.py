"""Container processes: start one for a function of an app version, watch it, stop it.

A container is forked from the pre-imported template of its image (or of the worker's own
environment) when the worker gave it one that is running (fast), else started as a fresh
interpreter. Either way it is its own session and process group, with the code bundle as working
directory, and it writes its serving address to a ready pipe. Given a cgroup, it is in it before
any of the app's code runs: a forked child waits for the worker to attach it (the template's "go"),
a fresh interpreter is started by a shell that enters the cgroup and then execs it. With sandboxes
on, it runs in its own (worker/sandbox/): forked, the template's child enters it; fresh, the
sandbox launcher starts it; the pid the worker signals is then the relay's that leads its group.
Given the worker's container network (a sandbox on network "private"), its own network namespace
gets its address before any of the app's code runs, in the same wait as the cgroup's (forked:
before the template's "go"; fresh: the launcher's network handshake), it listens on all of that
namespace's addresses, and the address it is reached at is the network's (advertise()).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from protos import container_env as cenv
from protos import stoker_pb2 as pb
from worker import image_launch
from worker.cgroups import ContainerCgroup
from worker.config import WorkerConfig
from worker.images import BuiltImage
from worker.inherited_env import inherited_environment
from worker.network import Attachment, ContainerNetwork, NetworkError
from worker.output import forward_lines
from worker.redact import Redactor, secret_values
from worker.sandbox.launch import launcher_command
from worker.sandbox.layout import CODE_DIR, inside_environment
from worker.sandbox.spec import SandboxSpec, forked_rooting
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
        cgroup: ContainerCgroup | None = None,
        sandbox: SandboxSpec | None = None,
        network: ContainerNetwork | None = None,
    ) -> None:
        self.command = command
        self.id = command.container_id
        self.directory = directory
        self.config = config
        self.image = image  # None: the worker's own environment
        self.template = template  # one started with the image's interpreter; None: start fresh
        self.cgroup = cgroup  # its limits; None: the worker runs containers without
        self.pid = 0
        self.output_tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
        self._exit: asyncio.Future[int] | None = None
        self._output_task: asyncio.Task[None] | None = None
        self.on_output = on_output  # each line it prints, secrets hidden, for the scheduler
        self._redact = Redactor(secret_values(command.env))
        # Its own sandbox (the code bundle, `directory`, at CODE_DIR in it); None: on the host.
        self.sandbox = sandbox
        self.code_dir = Path(CODE_DIR) if sandbox is not None else directory  # as the container sees it
        # Its own network namespace's place on the worker's bridge (the sandbox makes the
        # namespace); None: it shares the host's network.
        self.network = network if sandbox is not None and sandbox.network == "private" else None
        self.attachment: Attachment | None = None

    def _python(self) -> str:
        return self.image.python if self.image is not None else sys.executable

    def _environment(self) -> dict[str, str]:
        env = container_environment(self.command, self.config, self.image, self.code_dir)
        if self.network is not None:
            # Its namespace has nothing else to listen on; the scheduler as the bridge reaches it.
            env[cenv.BIND_HOST] = env[cenv.ADVERTISE_HOST] = "0.0.0.0"  # the worker tells its address
            env[cenv.SCHEDULER] = self.network.container_address(self.config.scheduler)
            env[cenv.LOCALHOST_ADDRESS] = str(self.network.gateway)  # to the ingresses of this machine
        return inside_environment(env) if self.sandbox is not None else env

    async def _before_start(self, pid: int) -> None:
        """While the container's first process waits, before any of the app's code: into its
        cgroup, and its network namespace (`pid`'s) onto the bridge."""
        if self.cgroup is not None:
            self.cgroup.attach(pid)
        await self._join_network(pid)

    async def _join_network(self, pid: int) -> None:
        if self.network is not None:
            self.attachment = await self.network.attach(pid, block_network=self.command.function.block_network)

    async def leave_network(self) -> None:
        """Give its address and ports back (once it has exited)."""
        attachment, self.attachment = self.attachment, None
        if self.network is not None and attachment is not None:
            try:
                await self.network.detach(attachment)
            except NetworkError as exc:  # its exit is still told; the network's stop removes the rest
                log.warning("container %s: leaving the container network: %s", self.id, exc)

    async def _launch(self, env: dict[str, str], output_fd: int, ready_fd: int) -> None:
        template = self.template
        if template is not None and template.alive and (template.sandbox is None) == (self.sandbox is None):
            try:
                plan = None
                if self.sandbox is not None and template.sandbox is not None:
                    plan = forked_rooting(self.sandbox, template.sandbox)
                self.pid, conn = await template.fork(self.code_dir, env, output_fd, ready_fd, plan, self._before_start)
                self._exit = asyncio.ensure_future(wait_exit(conn))
                return
            except (TemplateError, ValueError) as exc:  # ValueError: its sandbox cannot come from the template's
                log.warning("%s; starting %s as a new process instead", exc, self.id)
                await self.leave_network()  # the forked child's, if it got that far
        if self.network is not None:
            await self._launch_on_network(env, output_fd, ready_fd)
            return
        if self.sandbox is not None:
            program = launcher_command(self.sandbox, [self._python(), "-m", "worker.runtime"])
        elif self.image is not None:  # no sandbox: in the image's root, on the host's other namespaces
            program = image_launch.container_argv(self.image, self.config.work_dir, self.id, self.directory)
        else:
            program = [sys.executable, "-m", "worker.runtime"]
        await self._start_process(program, env, output_fd, ready_fd)

    async def _start_process(self, program: list[str], env: dict[str, str], output_fd: int, *pass_fds: int) -> None:
        """Start `program` as the container's fresh process, given the ready pipe (and `pass_fds`)."""
        if self.cgroup is not None:  # outermost: the launcher and the sandbox's processes are in it too
            program = entering_cgroup(self.cgroup, program)
        process = await asyncio.create_subprocess_exec(
            *program,
            cwd=self.directory,
            env={**env, cenv.READY_FD: str(pass_fds[0])},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output_fd,
            stderr=output_fd,
            pass_fds=pass_fds,
            start_new_session=True,  # its own process group, stopped as one
        )
        self.pid = process.pid
        self._exit = asyncio.ensure_future(process.wait())

    async def _launch_on_network(self, env: dict[str, str], output_fd: int, ready_fd: int) -> None:
        """A fresh sandbox on its own network: the launcher tells the pid in the sandbox's network
        namespace on a socket and waits there until the namespace is attached."""
        assert self.sandbox is not None
        ours, theirs = socket.socketpair()
        try:
            program = launcher_command(self.sandbox, [self._python(), "-m", "worker.runtime"], theirs.fileno())
            await self._start_process(program, env, output_fd, ready_fd, theirs.fileno())
            theirs.close()
            line = await asyncio.to_thread(_read_socket_line, ours)
            if not line.isdigit():
                return  # it exited before its namespaces were made: start() says why
            await self._join_network(int(line))  # (its cgroup it entered itself: entering_cgroup)
            ours.sendall(b"1")
        finally:
            theirs.close()
            ours.close()

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
            return await self._advertised(ready.result())
        await self.stop(grace=1)
        await self._drain_output()
        if not done:
            raise ContainerFailed(f"not ready within {ready_timeout:g} s")
        code = self._exit.result() if self._exit.done() else -1
        raise ContainerFailed(f"{self.exit_reason(code) or 'exited with code 0'} before serving:\n" + self.tail())

    async def _advertised(self, address: str) -> str:
        """Where ingresses reach the container that said it serves at `address`."""
        if self.attachment is None or self.network is None:
            return address
        port = int(address.rpartition(":")[2])
        return await self.network.advertise(self.attachment, port)

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
        if self.cgroup is not None and self.cgroup.out_of_memory(code):
            # In its logs too, where `stoker app logs` shows it beside what it printed last.
            self._output_line(f"stoker: the container {self.id} {self.exit_reason(code)}, and the kernel killed it")
        return code

    def exit_reason(self, code: int) -> str:
        """Why it exited with `code`, for ContainerExited.reason: "" when it stopped cleanly,
        "ran out of memory at N MiB" when its cgroup's OOM killer ended it."""
        if self.cgroup is not None:
            return self.cgroup.exit_reason(code)
        return f"exited with code {code}" if code else ""

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
        shutil.rmtree(self.sandbox.state_dir if self.sandbox is not None else self.directory, ignore_errors=True)
        shutil.rmtree(image_launch.own_dir(self.config.work_dir, self.id), ignore_errors=True)


def container_environment(
    command: pb.StartContainer, config: WorkerConfig, image: BuiltImage | None, directory: Path
) -> dict[str, str]:
    """The environment of `command`'s container, whose code bundle it sees at `directory`."""
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


def entering_cgroup(cgroup: ContainerCgroup, command: list[str]) -> list[str]:
    """`command`, run by a shell that first writes its own pid into the cgroup: exec keeps the pid,
    so the interpreter starts inside its limits. Exit code 125: the cgroup refused it."""
    script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", script, "sh", *map(str, cgroup.procs_files), "--", *command]


def _signal_group(pid: int, sig: signal.Signals) -> None:
    if pid <= 0:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _read_socket_line(sock: socket.socket) -> str:
    """The first line on `sock` ("" at its end)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(64)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


def _read_line(fd: int) -> str:
    with os.fdopen(fd, "rb") as pipe:
        return pipe.readline().decode().strip()
