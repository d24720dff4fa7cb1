"""A container that stops taking inputs: one of them ran past its timeout in code that cannot be
stopped (worker/runtime/threads.py), which still holds its thread and may hold its memory, locks
or GPU.

It says so on the stream of that input (a Retiring frame, ahead of the frames that end the input),
so that whoever holds the input's slot tells the scheduler: nothing more is placed there, the
scheduler stops the container once its other inputs are done and starts another when one is
needed. Should that stop not come, the container stops itself after `bound` seconds (its inputs'
timeout: every other input has ended by then), without waiting for the abandoned threads.
"""

from __future__ import annotations

import asyncio
import logging

from protos import stoker_pb2 as pb

log = logging.getLogger("stoker.container")


class Retirement:
    def __init__(self, stop: asyncio.Event, bound: float) -> None:
        self.stop = stop
        self.bound = bound
        self.reason = ""  # empty while the container takes inputs
        self._deadline: asyncio.TimerHandle | None = None

    def retire(self, out: asyncio.Queue[pb.ResponseFrame | None], input_id: int, why: str) -> None:
        """Input `input_id` (of the stream `out`) did not stop: `why` says which and after how long."""
        out.put_nowait(pb.ResponseFrame(id=input_id, retiring=pb.Retiring(reason=why)))
        if self.reason:
            return
        self.reason = why
        log.warning(
            "this container takes no new inputs and will be replaced: %s, in a thread that cannot be stopped; "
            "it exits once its other inputs are done (within %g s)",
            why,
            self.bound,
        )
        self._deadline = asyncio.get_running_loop().call_later(self.bound, self.stop.set)

    def close(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
