"""Container slots the ingress keeps between requests, so a request can skip the scheduler.

Placing a request costs a round trip to the scheduler (acquire, then assignment) and a release
after it: on loopback about a third of a millisecond of latency, and scheduler and ingress CPU
for every request. When the scheduler grants a slot with `may_hold`, nothing else waits for the
function and its container has room besides, so the ingress keeps the slot once the request is
over and gives it to its next request for the same function directly.

A held slot goes back to the scheduler:
- when no request took it within `linger` seconds (the container can go idle and scale down);
- when the scheduler recalls the function's slots (something else has to wait for it, or one of
  its containers stops): idle slots at once, busy ones when their request ends;
- when it has been out longer than `max_age` seconds (placement gets to rebalance it);
- when its container could not be reached, with every idle slot on that container.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

LINGER = 0.05  # seconds an idle held slot waits for the next request
MAX_AGE = 2.0  # seconds since the scheduler granted it; then it goes back at the end of a request


class Slot:
    """One container slot the scheduler granted this ingress, until it is released."""

    __slots__ = (
        "address",
        "container_id",
        "epoch",
        "function_id",
        "granted_at",
        "holdable",
        "idle_since",
        "slot_id",
    )

    def __init__(
        self, slot_id: int, function_id: str, container_id: str, address: str, holdable: bool, epoch: int
    ) -> None:
        self.slot_id = slot_id  # its name on the scheduler stream, kept across the requests it serves
        self.function_id = function_id
        self.container_id = container_id
        self.address = address
        self.holdable = holdable  # may_hold, until a recall
        self.epoch = epoch  # which scheduler stream granted it
        self.granted_at = time.monotonic()
        self.idle_since = 0.0


class HeldSlots:
    """The holdable slots of this ingress, busy and idle, per function; idle ones are reused
    newest first. `release` gives a slot back to the scheduler."""

    def __init__(self, release: Callable[[Slot], None], linger: float = LINGER, max_age: float = MAX_AGE) -> None:
        self.release = release
        self.linger = linger
        self.max_age = max_age
        self._busy: dict[str, set[Slot]] = {}  # so that a recall reaches slots whose request is running
        self._idle: dict[str, list[Slot]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def granted(self, slot: Slot) -> None:
        """A slot the scheduler just placed a request on, as its assignment arrives (a Recall
        later on the stream must reach it)."""
        if slot.holdable and self.linger > 0:
            self._busy.setdefault(slot.function_id, set()).add(slot)

    def take(self, function_id: str) -> Slot | None:
        idle = self._idle.get(function_id)
        if not idle:
            return None
        slot = idle.pop()  # the newest first: the oldest stay idle, and expire when load falls
        self._busy.setdefault(function_id, set()).add(slot)
        return slot

    def keep(self, slot: Slot) -> bool:
        """Hold `slot`, whose request is over, for the function's next one; False when it must
        go back instead."""
        busy = self._busy.get(slot.function_id)
        if busy is not None:
            busy.discard(slot)
            if not busy:
                del self._busy[slot.function_id]
        now = time.monotonic()
        if not slot.holdable or self.linger <= 0 or now - slot.granted_at > self.max_age:
            return False
        slot.idle_since = now
        self._idle.setdefault(slot.function_id, []).append(slot)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._expire)
        return True

    def recall(self, function_id: str) -> None:
        """The scheduler wants the function's slots back: release the idle ones, and hold no busy
        one past its request."""
        for slot in self._busy.get(function_id, ()):
            slot.holdable = False
        for slot in self._idle.pop(function_id, []):
            self.release(slot)

    def drop_container(self, container_id: str) -> None:
        """Release every idle slot on a container that could not be reached."""
        for function_id, idle in list(self._idle.items()):
            for slot in idle:
                if slot.container_id == container_id:
                    self.release(slot)
            self._idle[function_id] = [s for s in idle if s.container_id != container_id]

    def clear(self) -> None:
        """Forget every slot: the scheduler stream they came from is gone, and with it the
        scheduler freed them."""
        self._busy.clear()
        self._idle.clear()

    def _expire(self) -> None:
        self._timer = None
        now = time.monotonic()
        oldest = now
        for function_id, idle in list(self._idle.items()):
            # Slots go in as they fall idle and leave from the end, so the front is the oldest.
            while idle and idle[0].idle_since + self.linger <= now:
                self.release(idle.pop(0))
            if idle:
                oldest = min(oldest, idle[0].idle_since)
            else:
                del self._idle[function_id]
        if self._idle:
            self._timer = asyncio.get_running_loop().call_later(oldest + self.linger - now, self._expire)
