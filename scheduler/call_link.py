"""The scheduler's end of function calls: one long-lived, multiplexed Exchange stream per
container, carrying every call the scheduler places there.

A call is a `call` frame; the container answers with `output` frames (items, then a result or an
error) and a `done` frame. Each item takes a credit that goes back once the caller's stream took
it (in batches: protos/asgi.py's CreditsOwed), so a generator never runs more than WINDOW items
ahead of its caller. A call whose caller leaves is cancelled in the container with a `cancel`
frame for its id.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, Callable

from protos import stoker_pb2 as pb
from protos.asgi import CreditsOwed
from protos.exchange_link import ExchangeLink, ExchangeLinks


class ContainerLost(Exception):
    """The stream to the container broke during a call. `reached` False: the container never
    said hello, so the call never started and may be placed again."""

    def __init__(self, reached: bool, detail: str = "") -> None:
        super().__init__(detail or "the container stopped during the call")
        self.reached = reached
        self.stream_broke = not detail  # else the container ended the call, and is still there


class CallLink(ExchangeLink):
    """The scheduler's stream to one container, carrying every call it places there."""

    what = "call stream"

    def __init__(self, address: str, on_broken: Callable[[ExchangeLink], None]) -> None:
        super().__init__(address, on_broken)
        self._ids = itertools.count(1)
        # The container said it is Retiring: why. Its slots go back with Release's retire meaning.
        self.retiring = ""

    async def call(self, request: pb.CallRequest) -> AsyncGenerator[pb.CallOutput, None]:
        """The call's outputs: items as the function yields them, then its result or error.
        Raises ContainerLost when the container goes away first."""
        if self.broken:
            raise ContainerLost(reached=self.reached)
        call_id = next(self._ids)
        inbox = self.open(call_id)
        self._outbox.put_nowait(pb.RequestFrame(id=call_id, call=request))
        finished = False
        owed: CreditsOwed | None = None  # made at the first item
        try:
            while True:
                frame = await inbox.get()
                if frame is None:
                    raise ContainerLost(reached=self.reached)
                kind = frame.WhichOneof("kind")
                if kind == "output":
                    finished = frame.output.WhichOneof("kind") != "item"
                    yield frame.output
                    if finished:
                        return
                    if owed is None:
                        owed = CreditsOwed()
                    if due := owed.took(inbox.empty()):
                        self._outbox.put_nowait(pb.RequestFrame(id=call_id, credit=due))
                elif kind == "retiring":
                    self.retiring = frame.retiring.reason
                elif kind == "done":
                    finished = True
                    why = frame.done.failure or "?"
                    raise ContainerLost(reached=True, detail=f"the call ended without a result: {why}")
        finally:
            self.close_id(call_id, None if finished else pb.RequestFrame(id=call_id, cancel=pb.Cancel()))


class CallLinks(ExchangeLinks[CallLink]):
    def __init__(self) -> None:
        super().__init__(CallLink)
