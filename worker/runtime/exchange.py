"""The Container service: many requests multiplexed over each long-lived Exchange stream.

Each request opened by a Scope frame runs the ASGI app as its own task. Its receive() is fed by
event frames for its id; its send() turns ASGI messages into frames on the shared stream. A call
frame opens a function call instead (worker/runtime/calls.py), on the same stream.

A request past the function's timeout is cancelled and answered 504 with the words of
FunctionTimeoutError (a response already started is cut off instead). An app that does not stop
within STOP_GRACE seconds of its cancellation (a sync endpoint, whose thread cannot be stopped)
retires the container (worker/runtime/retirement.py), and the request is ended without it.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator
from typing import Any

import grpc

from client.call_codec import error_to_proto
from client.exceptions import InvalidError
from client.execution_context import enter_input
from protos import stoker_pb2 as pb
from protos import stoker_pb2_grpc as pb_grpc
from protos.asgi import (
    DISCONNECT_TYPES,
    CreditsOwed,
    SendWindow,
    event_from_proto,
    event_to_proto,
    needs_credit,
    plain_messages,
    plain_response,
    scope_from_proto,
)
from protos.batches import response_batches
from protos.exchange_link import Inbox
from worker.runtime.batching import Batcher
from worker.runtime.calls import Call, run_call, timeout_message
from worker.runtime.retirement import Retirement
from worker.runtime.served import Served
from worker.runtime.threads import Threads, request_threads
from worker.runtime.web import Message

log = logging.getLogger(__name__)

_RETURNED = pb.Done()  # copied into each frame it is given to, so one serves every request

_ERROR_MESSAGE = "Internal Server Error: the web function raised an exception (see the app's logs)"

STOP_GRACE = 1.0  # seconds a request's app has to stop once cancelled at its timeout


class ClientDisconnected(OSError):
    """send() after the client went away."""


class _Request:
    """One ASGI connection on a stream."""

    __slots__ = (
        "client_gone",
        "ended",
        "id",
        "inbox",
        "out",
        "overran",
        "owed",
        "started",
        "task",
        "threads",
        "window",
    )

    def __init__(self, request_id: int, out: asyncio.Queue[pb.ResponseFrame | None]) -> None:
        self.id = request_id
        self.out = out
        self.inbox: Inbox[pb.AsgiEvent] = Inbox()
        self.window: SendWindow | None = None  # made at the first response chunk that takes a credit
        self.owed: CreditsOwed | None = None  # made at the first request chunk that takes a credit
        self.started = False
        self.client_gone = False
        self.overran = False  # it ran past its timeout, and was cancelled
        self.ended = False  # its Done frame went out
        self.threads = Threads()  # where a sync FastAPI endpoint runs (worker/runtime/web.py)
        self.task: asyncio.Task[None] | None = None

    async def receive(self) -> Message:
        event = await self.inbox.get()
        if needs_credit(event.type, event.more_body):
            if self.owed is None:
                self.owed = CreditsOwed()
            if due := self.owed.took(self.inbox.empty()):
                self.out.put_nowait(pb.ResponseFrame(id=self.id, credit=due))
        return event_from_proto(event)

    async def send(self, message: Message) -> None:
        if self.client_gone:
            # ASGI 2.4: sending on a closed connection raises an OSError, which is how a streaming
            # response that never calls receive() learns to stop its work.
            raise self._gone()
        event = event_to_proto(message)
        if needs_credit(event.type, event.more_body):
            if self.window is None:
                self.window = SendWindow()
            if not await self.window.acquire():  # closed by _client_left()
                raise self._gone()
        if event.type == "http.response.start" or event.type == "websocket.accept":
            self.started = True
        self.out.put_nowait(pb.ResponseFrame(id=self.id, event=event))

    def on_frame(self, kind: str | None, frame: pb.RequestFrame) -> None:
        if kind == "event":
            if frame.event.type in DISCONNECT_TYPES:
                self._client_left()
            self.inbox.put_nowait(frame.event)
        elif kind == "credit" and self.window is not None:  # none comes before a chunk that takes one
            self.window.credit(frame.credit)

    def hang_up(self) -> None:
        """The stream is gone, and the client with it."""
        self._client_left()
        self.inbox.put_nowait(pb.AsgiEvent(type="http.disconnect"))

    def _gone(self) -> ClientDisconnected:
        return ClientDisconnected(f"the client of request {self.id} went away")

    def _client_left(self) -> None:
        self.client_gone = True
        if self.window is not None:
            # A send waiting for a credit would wait forever: no more come once the ingress has
            # stopped forwarding (a WebSocket whose client vanished). Wake it to raise.
            self.window.close()


class ContainerServicer(pb_grpc.ContainerServicer):
    def __init__(self, served: Served, retirement: Retirement) -> None:
        self.served = served
        self.retirement = retirement
        self._inputs: set[asyncio.Task[None]] = set()  # every open request and call, on any stream

    async def drain(self, seconds: float) -> None:
        """Wait until no request or call is open, at most `seconds`. The streams stay
        open (the ingress and the scheduler hold them for good), so a server's own graceful stop,
        which waits for them to end, would always take its whole grace."""
        deadline = asyncio.get_running_loop().time() + seconds
        while self._inputs and (left := deadline - asyncio.get_running_loop().time()) > 0:
            await asyncio.wait(set(self._inputs), timeout=left)

    def _track(self, task: asyncio.Task[None]) -> asyncio.Task[None]:
        self._inputs.add(task)
        task.add_done_callback(self._inputs.discard)
        return task

    async def Exchange(
        self, request_iterator: AsyncIterator[pb.RequestFrames], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.ResponseFrames]:
        out: asyncio.Queue[pb.ResponseFrame | None] = asyncio.Queue()
        open_: dict[int, _Request | Call] = {}  # the requests and calls open on this stream, by id
        # Hello before any request is read: an ingress that never saw it knows none reached the app.
        yield pb.ResponseFrames(frames=[pb.ResponseFrame(id=0)])
        pump = asyncio.create_task(self._pump(request_iterator, open_, out), name="exchange-pump")
        try:
            async for batch in response_batches(out):
                yield batch
        finally:
            pump.cancel()
            for opened in open_.values():
                if opened.task is not None:
                    opened.task.cancel()

    async def _pump(
        self,
        batches: AsyncIterator[pb.RequestFrames],
        open_: dict[int, _Request | Call],
        out: asyncio.Queue[pb.ResponseFrame | None],
    ) -> None:
        try:
            async for batch in batches:
                for frame in batch.frames:
                    kind = frame.WhichOneof("kind")
                    if kind == "scope":
                        request = open_[frame.id] = _Request(frame.id, out)
                        request.task = self._track(
                            asyncio.create_task(self._run(request, frame.scope, open_), name=f"request-{frame.id}")
                        )
                    elif kind == "call":
                        call = open_[frame.id] = Call(frame.id, out)
                        call.task = self._track(
                            asyncio.create_task(self._call(call, frame.call, open_), name=f"call-{frame.id}")
                        )
                    elif (found := open_.get(frame.id)) is not None:
                        found.on_frame(kind, frame)
                    # else: the request or call already finished; late frames are harmless
        except grpc.RpcError:
            pass  # the stream ended
        finally:
            # The ingress (or the scheduler, for calls) went away, and every client with it.
            for opened in open_.values():
                opened.hang_up()
            out.put_nowait(None)

    async def _call(self, call: Call, request: pb.CallRequest, open_: dict[int, _Request | Call]) -> None:
        failure = ""
        # This task runs the input: current_function_call_id() and the parent of the calls it makes.
        enter_input(request.context.function_call_id, request.context.input_id)
        try:
            callee = self.served.callee(request.method_name)
            if callee is None:
                call.emit(pb.CallOutput(error=error_to_proto(InvalidError(self._no_callee(request.method_name)))))
            elif isinstance(callee, Batcher):
                await callee.run(call, request, self.retirement)
            else:
                await run_call(callee, call, request, self.retirement)
        except asyncio.CancelledError:
            failure = "cancelled"
            raise
        finally:
            open_.pop(call.id, None)
            call.out.put_nowait(pb.ResponseFrame(id=call.id, done=pb.Done(failure=failure) if failure else _RETURNED))

    def _no_callee(self, method_name: str) -> str:
        if not method_name:
            return f"{self.served.name} takes HTTP requests only, not function calls"
        known = ", ".join(sorted(self.served.callees)) or "none"
        return f"{self.served.name} has no method {method_name!r} to call (it has: {known})"

    async def _run(self, request: _Request, scope_pb: pb.Scope, open_: dict[int, _Request | Call]) -> None:
        error = ""
        scope = scope_from_proto(scope_pb)
        loop = asyncio.get_running_loop()
        deadline = loop.call_later(self.served.timeout, self._time_out, request, scope, open_)
        request_threads.set(request.threads)  # in this task's context only
        try:
            app = self.served.web_apps.get(scope_pb.method_name)
            if app is None:
                raise RuntimeError(f"{self.served.name} serves no web endpoint {scope_pb.method_name!r} here")
            await app(scope, request.receive, request.send)
        except asyncio.CancelledError:
            if not request.overran:
                error = "cancelled"
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            error = self._timed_out(request, scope)
        except Exception:
            if request.overran:
                error = self._timed_out(request, scope)
            elif request.client_gone:
                # Most likely our own ClientDisconnected, as the app was told to stop: not its fault.
                error = "the client disconnected"
                log.info("request %s %s stopped: %s", scope_pb.method, scope_pb.path, error)
            else:
                error = traceback.format_exc()
                log.error("request %s %s failed:\n%s", scope_pb.method, scope_pb.path, error)
                if not request.started and scope_pb.type == "http":
                    await plain_response(scope, request.send, 500, _ERROR_MESSAGE)
        else:
            if request.overran:  # it swallowed its cancellation
                error = self._timed_out(request, scope)
        finally:
            deadline.cancel()
            open_.pop(request.id, None)
            if not request.ended:
                request.ended = True
                done = pb.Done(failure=error.strip().splitlines()[-1]) if error else _RETURNED
                request.out.put_nowait(pb.ResponseFrame(id=request.id, done=done))

    def _time_out(self, request: _Request, scope: dict[str, Any], open_: dict[int, _Request | Call]) -> None:
        """The request's timeout has come: cancel its app, and give it STOP_GRACE to stop."""
        request.overran = True
        if request.task is not None:
            request.task.cancel()
        asyncio.get_running_loop().call_later(STOP_GRACE, self._abandon, request, scope, open_)

    def _abandon(self, request: _Request, scope: dict[str, Any], open_: dict[int, _Request | Call]) -> None:
        """The app did not stop when cancelled: end the request without it, and retire."""
        if request.ended:
            return
        failure = self._timed_out(request, scope, stuck=True)
        open_.pop(request.id, None)
        request.ended = True
        request.out.put_nowait(pb.ResponseFrame(id=request.id, done=pb.Done(failure=failure)))

    def _timed_out(self, request: _Request, scope: dict[str, Any], stuck: bool = False) -> str:
        """Answer 504 (a WebSocket not yet accepted: denied, or closed with 1011), unless the
        response has started: an HTTP one is cut off by the Done's failure, an accepted WebSocket
        closed with 1011 and the words. The app may send nothing more. `stuck`, or a thread of the
        request's still running: retire first, so that the slot goes back saying so. Returns the
        Done's failure."""
        message = timeout_message(self.served.name, self.served.timeout)
        failure = message
        if (stuck or request.threads.abandoned) and not request.ended:
            self.retirement.retire(request.out, request.id, message)
        if not request.client_gone:
            log.warning("request %s %s: %s", scope.get("method", ""), scope.get("path", ""), message)
            events: list[dict[str, Any]] = []
            if not request.started:
                events = plain_messages(scope, 504, message)
            elif scope["type"] == "websocket":
                events = [{"type": "websocket.close", "code": 1011, "reason": message[:120]}]
                failure = ""  # closed as it should be: nothing to cut off
            for event in events:
                request.out.put_nowait(pb.ResponseFrame(id=request.id, event=event_to_proto(event)))
        request.started = True
        request._client_left()  # later sends of the app raise
        return failure
