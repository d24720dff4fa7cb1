"""Carry container output to the scheduler in batches, without ever holding a container back.

Containers write to pipes the worker always reads at once; lines wait here, in a bounded buffer,
until the worker's stream to the scheduler has room (at most MAX_BATCHES_IN_FLIGHT batches queued
on it). When the scheduler does not keep up and the buffer is full, new lines are dropped and
counted, and a "N lines dropped" line takes their place in the container's output.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable

from protos import stoker_pb2 as pb

log = logging.getLogger(__name__)

MAX_PENDING_LINES = 5_000  # buffered across all containers of this worker
MAX_BATCH_LINES = 500
MAX_BATCHES_IN_FLIGHT = 2  # handed to the stream, not yet written to the scheduler
FLUSH_INTERVAL = 0.05  # seconds lines may wait to share a batch
MAX_LINE_CHARS = 16 * 1024  # longer lines are cut: the scheduler keeps 1,000 per app in memory


def dropped_notice(sample: pb.LogLine, count: int) -> pb.LogLine:
    return pb.LogLine(
        app_id=sample.app_id,
        function=sample.function,
        container_id=sample.container_id,
        time=time.time(),
        text=f"[stoker] {count} lines dropped: the scheduler did not keep up with this output",
    )


class LogShipper:
    def __init__(
        self,
        send: Callable[[pb.ContainerLogs], None],
        max_pending: int = MAX_PENDING_LINES,
        max_batch: int = MAX_BATCH_LINES,
        max_in_flight: int = MAX_BATCHES_IN_FLIGHT,
    ) -> None:
        self._send = send
        self.max_pending = max_pending
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._pending: collections.deque[pb.LogLine] = collections.deque()
        self._dropped: dict[str, tuple[pb.LogLine, int]] = {}  # container id -> (a line of it, count)
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._emptied = asyncio.Event()  # set when a batch took the last pending line

    def add(self, line: pb.LogLine) -> None:
        """Queue a line; never blocks. Over the bound, the line is dropped and counted."""
        if len(self._pending) >= self.max_pending:
            _, count = self._dropped.get(line.container_id, (line, 0))
            self._dropped[line.container_id] = (line, count + 1)
            return
        self._note_dropped(line.container_id)
        if len(line.text) > MAX_LINE_CHARS:
            line.text = line.text[:MAX_LINE_CHARS] + " [stoker: line cut]"
        self._pending.append(line)
        self._wake.set()

    def _note_dropped(self, container_id: str) -> None:
        """Put the container's drop count where the lost lines were, before its next kept line."""
        dropped = self._dropped.pop(container_id, None)
        if dropped is not None:
            self._pending.append(dropped_notice(*dropped))

    @property
    def empty(self) -> bool:
        """Every line so far is in a batch handed to the stream."""
        return not self._pending and not self._dropped

    async def handed_over(self, seconds: float) -> None:
        """Wait until every line so far is in a batch handed to the stream, at most `seconds`."""
        if not self.empty:
            self._emptied.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._emptied.wait(), seconds)

    def delivered(self) -> None:
        """The stream wrote a batch: room for another."""
        self._in_flight = max(0, self._in_flight - 1)
        self._wake.set()

    def reset(self) -> None:
        """A new stream: batches queued on the old one are gone with it."""
        self._in_flight = 0
        self._wake.set()

    def take_batch(self) -> pb.ContainerLogs | None:
        """The next batch to send, or None when there is nothing or no room on the stream."""
        if self._in_flight >= self.max_in_flight:
            return None
        # Drops happened after every line pending now (the buffer was full), so a container
        # that has printed nothing since is told here, even if that goes one past the bound.
        for container_id in list(self._dropped):
            self._note_dropped(container_id)
        if not self._pending:
            return None
        count = min(len(self._pending), self.max_batch)
        batch = pb.ContainerLogs(lines=[self._pending.popleft() for _ in range(count)])
        self._in_flight += 1
        if self.empty:
            self._emptied.set()
        return batch

    async def run(self) -> None:
        """Send batches as the stream has room; owned and cancelled by the worker."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(FLUSH_INTERVAL)  # let a burst of lines share one batch
            while (batch := self.take_batch()) is not None:
                try:
                    self._send(batch)
                except Exception:
                    log.exception("could not queue container output for the scheduler")
                    self._in_flight -= 1
