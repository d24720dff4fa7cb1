"""What apps' containers printed: a ring of recent lines per app, and live subscribers to them.

Workers publish lines (secrets already hidden) as they arrive. Each live app keeps its last
RING_LINES lines; `stoker app logs` reads them and may follow new ones, and a `stoker serve`
session follows its own app. Publishing never waits: a subscriber that does not keep up loses
lines past SUBSCRIBER_QUEUE and is told how many.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, TypeVar

from protos import stoker_pb2 as pb
from scheduler.model import FunctionState

RING_LINES = 1_000  # recent lines kept per app
SUBSCRIBER_QUEUE = 1_000  # lines a subscriber may lag behind before it loses some
T = TypeVar("T")


class LogSubscription:
    """One reader's bounded queue of new lines for one app."""

    def __init__(self, app_id: str, maxsize: int = SUBSCRIBER_QUEUE) -> None:
        self.app_id = app_id
        self._queue: asyncio.Queue[pb.LogLine | None] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.closed = False

    def offer(self, line: pb.LogLine) -> None:
        # One place stays free for the drop notice, which goes where the lost lines were.
        if self._queue.qsize() >= self._queue.maxsize - 1:
            self.dropped += 1
            return
        self._put_notice()
        self._queue.put_nowait(line)

    def close(self) -> None:
        """No more lines will come (the app stopped): get() returns None once the queue is read."""
        self.closed = True
        self._put_notice()
        if not self._queue.full():
            self._queue.put_nowait(None)  # wakes a reader waiting on an empty queue

    async def get(self) -> pb.LogLine | None:
        if self._queue.empty():
            if self.dropped:
                return self._notice()
            if self.closed:
                return None
        return await self._queue.get()

    def _put_notice(self) -> None:
        if self.dropped and not self._queue.full():
            self._queue.put_nowait(self._notice())

    def _notice(self) -> pb.LogLine:
        text = f"[stoker] {self.dropped} lines dropped: this reader did not keep up"
        self.dropped = 0
        return pb.LogLine(app_id=self.app_id, time=time.time(), text=text)


class LogHub:
    def __init__(self, is_live: Callable[[str], bool], ring_lines: int = RING_LINES) -> None:
        self._is_live = is_live  # lines of an app that is gone (late output of its containers) are not kept
        self.ring_lines = ring_lines
        self._rings: dict[str, collections.deque[pb.LogLine]] = {}
        self._subscribers: dict[str, set[LogSubscription]] = {}
        self._stopping: set[str] = set()  # stopped apps whose containers are still stopping

    def app_stopped(self, app_id: str, containers_left: int) -> None:
        """The app stopped: its lines (and followers) stay until its last container has stopped,
        so that what its @modal.exit hooks print is still read."""
        if containers_left:
            self._stopping.add(app_id)
        else:
            self.forget(app_id)

    def container_gone(self, app_id: str, containers_left: int) -> None:
        if app_id in self._stopping and not containers_left:
            self.forget(app_id)

    def publish(self, lines: Iterable[pb.LogLine]) -> None:
        for line in lines:
            ring = self._rings.get(line.app_id)
            if ring is None:
                if not self._is_live(line.app_id) and line.app_id not in self._stopping:
                    continue
                ring = self._rings[line.app_id] = collections.deque(maxlen=self.ring_lines)
            ring.append(line)
            for subscription in self._subscribers.get(line.app_id, ()):
                subscription.offer(line)

    def recent(self, app_id: str, tail: int = 0) -> list[pb.LogLine]:
        """The last `tail` lines kept for the app (0: all of them)."""
        ring = self._rings.get(app_id, ())
        lines = list(ring)
        return lines[-tail:] if tail > 0 else lines

    @contextlib.contextmanager
    def subscribe(self, app_id: str) -> Iterator[LogSubscription]:
        subscription = LogSubscription(app_id)
        self._subscribers.setdefault(app_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers.get(app_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[app_id]

    def forget(self, app_id: str) -> None:
        """The app and its containers are gone: drop its lines and end its followers."""
        self._stopping.discard(app_id)
        self._rings.pop(app_id, None)
        for subscription in self._subscribers.get(app_id, ()):
            subscription.close()


def find_app(live: dict[str, list[FunctionState]], name: str, environment: str) -> str | None:
    """The app id of the running app of that name: the deployed one, else the newest served one."""
    found: list[tuple[bool, float, str]] = []
    for app_id, functions in live.items():
        if functions and (functions[0].app.name, functions[0].app.environment) == (name, environment):
            record = functions[0].app
            found.append((not record.ephemeral, record.created_at, app_id))
    return max(found)[2] if found else None


async def with_lines(
    responses: AsyncIterator[T], subscription: LogSubscription, wrap: Callable[[pb.LogLine], T]
) -> AsyncIterator[T]:
    """`responses` as they come, with the subscription's lines (wrapped) between them, until
    `responses` ends. Cancelling this cancels `responses` where it waits, so its cleanup runs."""
    next_response: asyncio.Future[T] = asyncio.ensure_future(anext(responses))
    next_line: asyncio.Future[pb.LogLine | None] = asyncio.ensure_future(subscription.get())
    try:
        while True:
            waiting: set[asyncio.Future[Any]] = {next_response, next_line}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if next_line in done:
                line = next_line.result()
                if line is None:  # closed: no more lines, wait on responses alone
                    next_line = asyncio.get_running_loop().create_future()
                else:
                    yield wrap(line)
                    next_line = asyncio.ensure_future(subscription.get())
            if next_response in done:
                try:
                    response = next_response.result()
                except StopAsyncIteration:
                    return
                yield response
                next_response = asyncio.ensure_future(anext(responses))
    finally:
        next_line.cancel()
        next_response.cancel()
        await asyncio.gather(next_response, next_line, return_exceptions=True)
        await responses.aclose()  # type: ignore[attr-defined]
