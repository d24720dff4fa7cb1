"""The ingress's held slots: which are reused, which go back to the scheduler, and when."""

from __future__ import annotations

import asyncio

from ingress.held_slots import HeldSlots, Slot


def slot(slot_id: int, function_id: str = "f", container_id: str = "ct-1", holdable: bool = True) -> Slot:
    return Slot(slot_id, function_id, container_id, "127.0.0.1:1", holdable, epoch=0)


def held(linger: float = 30.0, max_age: float = 60.0) -> tuple[HeldSlots, list[int]]:
    released: list[int] = []
    return HeldSlots(lambda s: released.append(s.slot_id), linger, max_age), released


def granted(slots: HeldSlots, *granted_slots: Slot) -> None:
    for s in granted_slots:
        slots.granted(s)


def test_a_finished_slot_is_reused_newest_first_and_only_for_its_function() -> None:
    async def main() -> None:
        slots, released = held()
        a, b = slot(1), slot(2)
        granted(slots, a, b)
        assert slots.keep(a) and slots.keep(b)
        assert slots.take("other") is None
        assert slots.take("f") is b
        assert slots.take("f") is a
        assert slots.take("f") is None
        assert released == []

    asyncio.run(main())


def test_a_slot_the_scheduler_did_not_let_hold_goes_back() -> None:
    async def main() -> None:
        slots, _ = held()
        s = slot(1, holdable=False)
        granted(slots, s)
        assert not slots.keep(s)
        assert slots.take("f") is None

    asyncio.run(main())


def test_no_linger_holds_nothing() -> None:
    async def main() -> None:
        slots, _ = held(linger=0)
        s = slot(1)
        granted(slots, s)
        assert not slots.keep(s)

    asyncio.run(main())


def test_a_recall_releases_idle_slots_and_busy_ones_when_their_request_ends() -> None:
    async def main() -> None:
        slots, released = held()
        idle, busy, other = slot(1), slot(2), slot(3, function_id="g")
        granted(slots, idle, busy, other)
        slots.keep(idle)
        slots.keep(other)
        slots.recall("f")
        assert released == [1]
        assert not slots.keep(busy)  # its request ended after the recall: it goes back too
        assert slots.take("f") is None
        assert slots.take("g") is other  # another function's slots stay held

    asyncio.run(main())


def test_a_slot_granted_after_a_recall_is_held_again() -> None:
    async def main() -> None:
        slots, _ = held()
        slots.recall("f")
        s = slot(1)
        granted(slots, s)
        assert slots.keep(s)

    asyncio.run(main())


def test_an_idle_slot_goes_back_after_the_linger() -> None:
    async def main() -> None:
        slots, released = held(linger=0.05)
        first, second = slot(1), slot(2)
        granted(slots, first, second)
        slots.keep(first)
        await asyncio.sleep(0.03)
        slots.keep(second)
        await asyncio.sleep(0.04)  # past the first's linger, within the second's
        assert released == [1]
        await asyncio.sleep(0.05)
        assert released == [1, 2]
        assert slots.take("f") is None

    asyncio.run(main())


def test_a_slot_out_longer_than_max_age_goes_back() -> None:
    async def main() -> None:
        slots, _ = held(max_age=0.01)
        s = slot(1)
        granted(slots, s)
        await asyncio.sleep(0.02)
        assert not slots.keep(s)

    asyncio.run(main())


def test_an_unreachable_container_loses_its_idle_slots() -> None:
    async def main() -> None:
        slots, released = held()
        gone, kept = slot(1, container_id="ct-gone"), slot(2, container_id="ct-ok")
        granted(slots, gone, kept)
        slots.keep(gone)
        slots.keep(kept)
        slots.drop_container("ct-gone")
        assert released == [1]
        assert slots.take("f") is kept

    asyncio.run(main())


def test_clear_forgets_without_releasing() -> None:
    async def main() -> None:
        slots, released = held()
        s = slot(1)
        granted(slots, s)
        slots.keep(s)
        slots.clear()
        assert slots.take("f") is None
        assert released == []

    asyncio.run(main())
