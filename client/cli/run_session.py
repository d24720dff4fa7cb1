"""The ephemeral app of a `stoker run`: a Serve stream opened before the entrypoint runs and
closed after it ends, however it ends; the app lives exactly as long as the stream. The stream is
read in a thread, so that the entrypoint runs in the main thread (where Ctrl-C reaches it) while
image builds and the app's container output print as they come."""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import grpc

from client.app import App
from client.cli.logs import format_line
from client.cli.serve import find_or_start_cluster, print_endpoints, stop_own_cluster
from client.config import ClientConfig
from client.connection import rpc_errors, scheduler_stub
from client.exceptions import ExecutionError
from protos import stoker_pb2 as pb

CLOSE_WAIT_SECONDS = 30.0  # for the scheduler to stop the app once the stream is half-closed


class EphemeralApp:
    """`with EphemeralApp(definition, env, cluster) as run:` the app runs on the cluster, as `run.app_id`."""

    def __init__(self, definition: pb.AppDefinition, environment: str, cluster: ClientConfig) -> None:
        self._request = pb.ServeRequest(app=definition, environment=environment)
        self._cluster = cluster
        self._closing = threading.Event()
        self._live = threading.Event()
        self._ended = threading.Event()
        self._app_id = ""
        self._error: grpc.RpcError | None = None
        self._responses: Any = None  # the Serve call: an iterator of responses that can be cancelled
        self._reader = threading.Thread(target=self._read, name="run-serve-stream", daemon=True)

    def _requests(self) -> Iterator[pb.ServeRequest]:
        yield self._request
        self._closing.wait()  # then the stream's sending half closes: the scheduler stops the app

    def _read(self) -> None:
        try:
            for response in self._responses:
                kind = response.WhichOneof("kind")
                # The app's output goes to stderr, a line per write: stdout is the entrypoint's,
                # whose prints (in the main thread) would otherwise interleave with these mid-line.
                if kind == "log":
                    _to_stderr(format_line(response.log))
                elif kind == "build_output":
                    _to_stderr(response.build_output)
                elif kind == "rejected":
                    print(f"Refused: {response.rejected}", file=sys.stderr, flush=True)
                elif kind == "deployed":
                    print_endpoints(response.deployed)
                    self._app_id = response.deployed.app_id
                    self._live.set()
        except grpc.RpcError as exc:
            if not self._closing.is_set():
                self._error = exc
        finally:
            self._ended.set()
            self._live.set()  # wakes the waiting entrypoint when the stream ended first

    def __enter__(self) -> EphemeralApp:
        stub, metadata = scheduler_stub(self._cluster)
        self._responses = stub.Serve(self._requests(), metadata=metadata)
        self._reader.start()
        while not self._live.wait(0.5):  # a timed wait, so Ctrl-C is not held up
            pass
        if not self._app_id:
            self.close()
            if self._error is not None:
                with rpc_errors():
                    raise self._error
            raise ExecutionError("the cluster ended the run before the app was live")
        return self

    @property
    def app_id(self) -> str:
        return self._app_id

    def close(self) -> None:
        self._closing.set()
        if self._responses is not None and not self._ended.wait(CLOSE_WAIT_SECONDS):
            self._responses.cancel()
        self._reader.join(CLOSE_WAIT_SECONDS)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def ended_early(self) -> bool:
        """Whether the cluster ended the app while the entrypoint still ran."""
        return self._ended.is_set() and not self._closing.is_set()


def run_with_app(app: App, definition: pb.AppDefinition | None, environment: str, body: Callable[[], None]) -> int:
    """Run `body` with `app` live as an ephemeral app (none when it has no functions: nothing
    would run there), on the configured cluster or an embedded one; its exit code."""
    if definition is None:
        return _exit_code_of(body)
    cluster, own_cluster = find_or_start_cluster()
    try:
        with EphemeralApp(definition, environment, cluster) as run:
            app._app_id = run.app_id  # the app's calls from this process reach this run
            try:
                code = _exit_code_of(body)
            finally:
                app._app_id = None
            if run.ended_early:
                print("The cluster ended the app before the run finished.", file=sys.stderr, flush=True)
            return code
    except KeyboardInterrupt:
        print("Interrupted; the app is stopped.", file=sys.stderr, flush=True)
        return 130
    finally:
        stop_own_cluster(own_cluster)


def _exit_code_of(body: Callable[[], None]) -> int:
    try:
        body()
    except SystemExit as exc:
        return exit_code(exc)
    except Exception:
        traceback.print_exc()
        return 1
    return 0


def exit_code(exc: SystemExit) -> int:
    """The exit code a SystemExit asks for, as the interpreter makes it."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _to_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")  # one write: print() writes the text and its newline apart
    sys.stderr.flush()
