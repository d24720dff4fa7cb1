"""Spawned calls at scheduler shutdown: cancelled and awaited, without swallowing a cancel of
the shutdown itself."""

from __future__ import annotations

import asyncio

import pytest

from protos import stoker_pb2 as pb
from scheduler.spawned import SpawnedCalls


def test_close_cancels_running_calls_and_waits_for_them() -> None:
    async def scenario() -> None:
        calls = SpawnedCalls()
        ended = asyncio.Event()

        async def outcome() -> pb.CallOutput:
            try:
                await asyncio.sleep(60)
            finally:
                ended.set()
            return pb.CallOutput()

        calls.start(lambda _call_id: outcome())
        await asyncio.sleep(0)
        await calls.close()
        assert ended.is_set()

    asyncio.run(scenario())


def test_a_cancelled_close_is_cancelled() -> None:
    async def scenario() -> None:
        calls = SpawnedCalls()

        async def slow_to_stop() -> pb.CallOutput:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                await asyncio.sleep(0.2)  # cleans up for a while before it ends
                raise
            return pb.CallOutput()

        calls.start(lambda _call_id: slow_to_stop())
        await asyncio.sleep(0)
        closing = asyncio.ensure_future(calls.close())
        await asyncio.sleep(0.01)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing

    asyncio.run(scenario())
