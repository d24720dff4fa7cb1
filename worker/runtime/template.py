"""A pre-imported template that forks containers, so a cold start skips interpreter start-up
and the heavy imports (FastAPI alone takes ~400 ms to import; a fork takes ~20 ms).

The worker starts one template (`python -m worker.runtime.template SOCKET`) and asks it for each
container over a Unix socket: a JSON request carrying the container's working directory and
environment, plus two file descriptors (its output pipe and its ready pipe). The template forks;
the template replies {"pid": N}; the worker puts that pid in the container's cgroup and answers
"go", and only then does the child become the container (worker.runtime.container.main) in its own
session, so that none of the app's code runs outside its limits. When that child exits, the
template sends {"exit": CODE} on the same connection.

It holds no gRPC channel, server or event loop when it forks, and runs one thread.

With `--snapshot` it is a memory snapshot of one function (worker/runtime/snapshot.py): started
in the function's environment and code bundle, it imports the app and runs the class's
`@modal.enter(snap=True)` hooks before it says ready, and its containers start from there. Its
output (what the app prints, a hook's traceback) goes to stderr, which the worker forwards to the
app's logs; stdout carries only the ready line. SIGUSR1 retires it: it forks no more and exits
once its last container has.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from protos import container_env as cenv
from worker.runtime import isolation

if TYPE_CHECKING:
    from worker.runtime.snapshot import Snapshot

MAX_REQUEST = 1024 * 1024
GO = b"go\n"  # the worker's answer to a fork's pid: the child may become the container


def preload() -> None:
    """Import what every container needs, once, before any fork: the runtime from its private
    paths (gRPC, protobuf, the SDK: isolation.py), then what it shares with the app, from the
    image when the image has it."""
    isolation.isolate()
    import a2wsgi  # noqa: F401
    import fastapi
    import fastapi.routing  # noqa: F401
    import pydantic  # noqa: F401
    import starlette.applications  # noqa: F401

    import client  # noqa: F401
    import worker.runtime.container
    import worker.runtime.exchange
    import worker.runtime.forward
    import worker.runtime.web
    import worker.sandbox.enter  # noqa: F401  (a sandboxed template's children enter their own)

    with contextlib.suppress(ImportError):  # containers run on it when it is there
        import uvloop  # noqa: F401


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    message, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 2)
    return json.loads(message), fds


def _wait_for_go(conn: socket.socket) -> None:
    """In the forked child: wait until the worker says go (it put us in our cgroup); a worker
    that hung up instead (it could not) ends us before any of the app's code ran."""
    data = b""
    while not data.endswith(b"\n") and len(data) < 16:
        chunk = conn.recv(16)
        if not chunk:
            break
        data += chunk
    if data != GO:
        os._exit(1)


def _enter_sandbox(plan: str, conn: socket.socket, output_fd: int) -> None:
    """In the forked child of a sandboxed template: tell the worker our pid, then enter the
    container's own namespaces and root (worker/sandbox/enter.py); returns in its PID 1.

    The pid travels as the kernel's SCM_CREDENTIALS, which it translates into the worker's PID
    namespace: the template has its own, so the pid it sees is not the one the worker signals."""
    import struct

    from worker.sandbox import libc
    from worker.sandbox.enter import enter
    from worker.sandbox.spec import Rooting

    os.setsid()  # the group the worker stops: this relay and the sandbox's processes
    os.dup2(output_fd, 2)  # why a sandbox could not be built goes with the container's output
    libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
    rooting = Rooting.from_json(plan)
    if rooting.network == "private":
        # Its own network namespace now (owned by the template's user namespace), so that the
        # worker, told our pid, gives it its address before the app's code runs.
        libc.unshare(libc.CLONE_NEWNET)
    credentials = struct.pack("3i", os.getpid(), os.getuid(), os.getgid())
    reply = json.dumps({"pid": os.getpid()}).encode() + b"\n"
    conn.sendmsg([reply], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, credentials)])
    _wait_for_go(conn)  # in our cgroup first: the sandbox's processes are forked from us
    conn.close()
    enter(rooting, new_mount_namespace=True)


def _become_container(request: dict[str, Any], output_fd: int, ready_fd: int, snapshot: Snapshot | None) -> None:
    """In the forked child: turn into the container process, never returning."""
    code = 1
    try:
        if "sandbox" not in request:  # a sandbox's relay made the session already
            os.setsid()
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(output_fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[cenv.READY_FD] = str(ready_fd)
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        from worker.runtime.container import main

        main(snapshot)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


class Template:
    def __init__(self, path: str, snapshot: Snapshot | None = None) -> None:
        self.path = path
        self.snapshot = snapshot  # what its containers start from; None: a fresh import of their app
        if path.startswith("fd:"):  # bound by the worker, outside this template's sandbox
            self.listener = socket.socket(fileno=int(path[3:]))
        else:
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(path)
            self.listener.listen(64)
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, socket.socket] = {}
        self.running = True
        self.retiring = False  # SIGUSR1 came: fork no more, exit once the last child has
        self.retired = False  # the listener is closed
        # SIGCHLD wakes the loop through this pipe instead of a thread.
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def handle_signals(self) -> None:
        """Before the worker hears "ready": a SIGUSR1 (retire) sent at once must not kill us."""
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGUSR1, self._retire)

    def serve(self) -> None:
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        while self.running and not (self.retired and not self.children):
            for key, _ in self.selector.select():
                if key.data == "accept" and not self.retiring:
                    conn, _ = self.listener.accept()
                    self._spawn(conn)
                else:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 4096)
                    self._reap()
            if self.retiring and not self.retired:
                self.retired = True
                self.selector.unregister(self.listener)
                self.listener.close()
                if not self.path.startswith("fd:"):  # the worker's to remove, then
                    with contextlib.suppress(OSError):
                        os.unlink(self.path)
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)

    def _stop(self, *_: object) -> None:
        self.running = False

    def _retire(self, *_: object) -> None:
        self.retiring = True  # the signal's byte on the wake-up pipe ends the select

    def _spawn(self, conn: socket.socket) -> None:
        fds: list[int] = []
        try:
            request, fds = _receive(conn)
            if len(fds) != 2:
                raise ValueError(f"expected 2 file descriptors, got {len(fds)}")
            pid = os.fork()
            if pid == 0:
                try:
                    self.listener.close()
                    if "sandbox" in request:
                        _enter_sandbox(request["sandbox"], conn, fds[0])
                    else:
                        _wait_for_go(conn)
                    conn.close()
                except BaseException as exc:  # never back into the template's loop
                    with contextlib.suppress(OSError):
                        os.write(fds[0], f"the sandbox could not be built: {exc}\n".encode())
                    os._exit(1)
                _become_container(request, fds[0], fds[1], self.snapshot)
            self.children[pid] = conn
            if "sandbox" not in request:  # else the child said it, as the worker sees it
                conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        except Exception as exc:
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"error": repr(exc)}).encode() + b"\n")
            conn.close()
        finally:
            for fd in fds:
                os.close(fd)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
                conn.close()


def main() -> None:
    isolation.isolate()  # first: nothing may import gRPC or protobuf before it
    from worker.runtime.container import die_with_parent

    die_with_parent()
    if os.getppid() == 1:
        sys.exit(1)
    preload()
    snapshot = None
    status = sys.stdout
    if "--snapshot" in sys.argv[2:]:
        status = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)  # what the app prints goes with its logs, not into the ready line's pipe
        snapshot = _take_snapshot()
    template = Template(sys.argv[1], snapshot)
    template.handle_signals()
    print("ready", file=status, flush=True)  # the worker waits for this line on our stdout
    if status is not sys.stdout:
        status.close()
    template.serve()


def _take_snapshot() -> Snapshot:
    """Import the app and run its snap=True hooks; on failure, say why and exit 1."""
    import gc
    import logging

    from worker.runtime.served import StartupError
    from worker.runtime.snapshot import take

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        snapshot = take()
    except StartupError:
        sys.exit(1)  # said why already
    except Exception:
        import traceback

        traceback.print_exc()  # the app failed to import: as a container's, its traceback ends the output
        sys.exit(1)
    # Everything alive now lives as long as the template: the collector never walks it again, in
    # the template or in a container, so their shared pages stay shared.
    gc.freeze()
    return snapshot


if __name__ == "__main__":
    main()
