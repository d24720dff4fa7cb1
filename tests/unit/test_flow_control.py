"""Credit flow control's two ends (protos/asgi.py): SendWindow and CreditsOwed."""

from __future__ import annotations

import asyncio

from protos.asgi import CREDIT_BATCH, WINDOW, CreditsOwed, SendWindow


async def _acquired(window: SendWindow, count: int) -> None:
    for _ in range(count):
        assert await window.acquire()


async def _waits(window: SendWindow) -> asyncio.Task[bool]:
    """A sender that has to wait for a credit, shown to be waiting."""
    sender = asyncio.create_task(window.acquire())
    await asyncio.sleep(0)
    assert not sender.done()
    return sender


def test_a_window_lets_window_sends_through_and_holds_the_next_until_a_credit() -> None:
    async def run() -> None:
        window = SendWindow()
        await _acquired(window, WINDOW)
        sender = await _waits(window)
        window.credit(1)
        assert await sender

    asyncio.run(run())


def test_a_credit_of_several_wakes_as_many_waiting_senders() -> None:
    async def run() -> None:
        window = SendWindow()
        await _acquired(window, WINDOW)
        senders = [await _waits(window) for _ in range(3)]
        window.credit(2)
        await asyncio.sleep(0)
        assert [s.done() for s in senders] == [True, True, False]
        window.credit(1)
        assert await senders[2]

    asyncio.run(run())


def test_credits_that_come_before_a_sender_waits_let_as_many_more_through() -> None:
    async def run() -> None:
        window = SendWindow()
        await _acquired(window, WINDOW)
        window.credit(CREDIT_BATCH)
        await asyncio.wait_for(_acquired(window, CREDIT_BATCH), 1)
        (await _waits(window)).cancel()

    asyncio.run(run())


def test_close_wakes_a_blocked_sender_and_refuses_later_ones() -> None:
    async def run() -> None:
        window = SendWindow()
        await _acquired(window, WINDOW)
        senders = [await _waits(window), await _waits(window)]
        window.close()
        assert [await s for s in senders] == [False, False]
        assert not await window.acquire()

    asyncio.run(run())


def test_a_closed_window_refuses_even_with_credit_to_spare() -> None:
    async def run() -> None:
        window = SendWindow()
        window.close()
        assert not await window.acquire()

    asyncio.run(run())


def test_a_sender_cancelled_as_it_was_handed_a_credit_passes_it_on() -> None:
    async def run() -> None:
        window = SendWindow()
        await _acquired(window, WINDOW)
        first, second = await _waits(window), await _waits(window)
        window.credit(1)  # first's
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        assert first.cancelled()
        assert await second

    asyncio.run(run())


def test_a_credit_that_comes_while_a_woken_sender_has_not_run_reaches_the_next() -> None:
    async def run() -> None:
        window = SendWindow()
        await _acquired(window, WINDOW)
        first = await _waits(window)
        window.credit(1)  # first is woken, but has not run yet
        second = asyncio.create_task(window.acquire())  # queues behind first
        await asyncio.sleep(0)
        window.credit(1)
        assert await first
        assert await asyncio.wait_for(second, 1)

    asyncio.run(run())


def test_owed_credits_go_back_per_batch_while_more_wait() -> None:
    owed = CreditsOwed()
    returned = [owed.took(caught_up=False) for _ in range(CREDIT_BATCH * 3)]
    assert returned == ([0] * (CREDIT_BATCH - 1) + [CREDIT_BATCH]) * 3


def test_owed_credits_go_back_all_at_once_when_caught_up() -> None:
    owed = CreditsOwed()
    assert owed.took(caught_up=False) == 0  # fewer than a batch, and more on the way
    assert owed.took(caught_up=True) == 2
    assert owed.took(caught_up=True) == 1
