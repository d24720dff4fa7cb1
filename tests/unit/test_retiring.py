"""A container that says it is Retiring (an input it could not stop): the scheduler places nothing
more there, stops it once its inputs are done, and starts another for what waits. And the thread
bookkeeping that tells the runtime an input could not be stopped."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from protos import stoker_pb2 as pb
from scheduler.calls import Calls
from tests.unit.test_call_placement import _setup, _started
from worker.runtime.threads import Threads, still_running


def _stopped(commands: list[pb.WorkerCommand]) -> list[str]:
    return [c.stop.container_id for c in commands if c.WhichOneof("kind") == "stop"]


def test_a_retiring_container_takes_nothing_more_and_stops_once_idle(tmp_path: Path) -> None:
    asyncio.run(_retiring(tmp_path))


async def _retiring(tmp_path: Path) -> None:
    apps, cluster, worker = _setup(tmp_path, max_containers=2, max_inputs=2)
    fn = Calls(apps, cluster).find("jobs", "", "work")
    first = asyncio.ensure_future(cluster.acquire_slot(fn))
    await asyncio.sleep(0)
    [start] = _started(worker)
    cluster.container_started(start.container_id, "127.0.0.1:1")
    old = await asyncio.wait_for(first, 1)
    other = await cluster.acquire_slot(fn)  # a second input on the same container
    assert other is old and old.in_flight == 2

    cluster.release_slot(old, retire="square exceeded its timeout of 1 s")
    assert old.state == "draining"
    commands = [worker.outbox.get_nowait() for _ in range(worker.outbox.qsize())]
    assert _stopped(commands) == []  # its other input still runs there
    # The next call does not go there: a new container starts for it.
    waiting = asyncio.ensure_future(cluster.acquire_slot(fn))
    await asyncio.sleep(0)
    [replacement] = [c.start for c in commands if c.WhichOneof("kind") == "start"] or _started(worker)
    assert replacement.container_id != old.id and not waiting.done()

    cluster.release_slot(old)  # its last input ends: now it stops
    assert _stopped([worker.outbox.get_nowait() for _ in range(worker.outbox.qsize())]) == [old.id]
    cluster.container_started(replacement.container_id, "127.0.0.1:2")
    assert (await asyncio.wait_for(waiting, 1)).id == replacement.container_id


def test_a_thread_cancelled_while_it_runs_is_abandoned_one_that_finished_is_not() -> None:
    asyncio.run(_threads())


async def _threads() -> None:
    release = threading.Event()
    stuck = Threads()
    task = asyncio.ensure_future(stuck.run(release.wait))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert stuck.abandoned and still_running() == 1
    release.set()
    await asyncio.sleep(0.05)
    assert still_running() == 0

    done = Threads()
    assert await done.run(lambda: 7) == 7
    assert not done.abandoned
