"""Image builds a deploy asks of the workers: send BuildImage to each, pass the output lines on as
they arrive, and end when every worker is done (or at the first failure, with its error).

Workers report on their own streams (WorkerMessage.image); this is where those events meet the
deploys waiting on them. A deploy is only made live after its images are built, so a failing
build leaves the previous version serving.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterable

from protos import stoker_pb2 as pb
from scheduler.image_spec import image_id
from scheduler.model import WorkerSession

BUILD_TIMEOUT = 900.0  # a bound on a deploy's wait; workers stop a build at their own timeout (600 s)


class BuildFailed(Exception):
    """An image could not be built on some worker; the message carries the installer's error."""


def images_of(functions: Iterable[pb.FunctionSpec]) -> dict[str, pb.ImageSpec]:
    """The distinct images these functions run in, by id (functions with no image need none)."""
    return {image_id(f.image): f.image for f in functions if f.HasField("image")}


Key = tuple[str, str]  # (worker id, image id)


class ImageBuilds:
    def __init__(self, timeout: float = BUILD_TIMEOUT) -> None:
        self.timeout = timeout
        self._waiting: dict[Key, list[asyncio.Queue[tuple[str, pb.ImageBuildEvent]]]] = {}

    def on_event(self, worker_id: str, event: pb.ImageBuildEvent) -> None:
        for queue in self._waiting.get((worker_id, event.image_id), []):
            queue.put_nowait((worker_id, event))

    def worker_lost(self, worker_id: str) -> None:
        for (worker, image), _ in list(self._waiting.items()):
            if worker == worker_id:
                lost = pb.ImageBuildEvent(
                    image_id=image, done=True, error=f"worker {worker_id} disconnected during the build"
                )
                self.on_event(worker_id, lost)

    @staticmethod
    def request(worker: WorkerSession, images: dict[str, pb.ImageSpec]) -> None:
        """Ask a worker to build images without waiting (one that joins while apps are live)."""
        for image, spec in images.items():
            worker.outbox.put_nowait(pb.WorkerCommand(build=pb.BuildImage(image_id=image, spec=spec)))

    async def build(self, workers: Iterable[WorkerSession], images: dict[str, pb.ImageSpec]) -> AsyncIterator[str]:
        """Build `images` on every worker; yield each output line; raise BuildFailed on an error."""
        workers = list(workers)
        queue: asyncio.Queue[tuple[str, pb.ImageBuildEvent]] = asyncio.Queue()
        pending = {(w.id, image) for w in workers for image in images}
        for key in pending:
            self._waiting.setdefault(key, []).append(queue)
        try:
            for worker in workers:
                self.request(worker, images)
            deadline = time.monotonic() + self.timeout
            while pending:
                try:
                    async with asyncio.timeout(deadline - time.monotonic()):
                        worker_id, event = await queue.get()
                except TimeoutError:
                    raise BuildFailed(f"image builds did not finish within {self.timeout:g} s") from None
                prefix = f"[{worker_id}] " if len(workers) > 1 else ""
                if event.output:
                    yield prefix + event.output
                if event.done:
                    pending.discard((worker_id, event.image_id))
                    if event.error:
                        raise BuildFailed(
                            f"image {event.image_id} failed to build on worker {worker_id}: {event.error}"
                        )
        finally:
            for key in {(w.id, image) for w in workers for image in images}:
                waiters = self._waiting.get(key, [])
                if queue in waiters:
                    waiters.remove(queue)
                if not waiters:
                    self._waiting.pop(key, None)


PRUNE_TIMEOUT = 120.0


class ImagePrunes:
    """`stoker image prune`: ask each worker to delete what the live images do not use, and
    collect their answers (a worker that does not answer in time is reported so)."""

    def __init__(self, timeout: float = PRUNE_TIMEOUT) -> None:
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Queue[pb.ImagePruned]] = {}

    def on_pruned(self, pruned: pb.ImagePruned) -> None:
        queue = self._waiting.get(pruned.request_id)
        if queue is not None:
            queue.put_nowait(pruned)

    async def prune(self, workers: list[WorkerSession], keep: list[str]) -> list[pb.ImagePruned]:
        request_id = next(self._ids)
        queue: asyncio.Queue[pb.ImagePruned] = asyncio.Queue()
        self._waiting[request_id] = queue
        answers: dict[str, pb.ImagePruned] = {}
        try:
            for worker in workers:
                command = pb.ImagePrune(request_id=request_id, keep_image_ids=keep)
                worker.outbox.put_nowait(pb.WorkerCommand(image_prune=command))
            deadline = time.monotonic() + self.timeout
            while len(answers) < len(workers):
                try:
                    async with asyncio.timeout(deadline - time.monotonic()):
                        pruned = await queue.get()
                except TimeoutError:
                    break
                answers[pruned.worker_id] = pruned
        finally:
            del self._waiting[request_id]
        for worker in workers:
            if worker.id not in answers:
                answers[worker.id] = pb.ImagePruned(worker_id=worker.id, error=f"no answer within {self.timeout:g} s")
        return [answers[w.id] for w in workers]
