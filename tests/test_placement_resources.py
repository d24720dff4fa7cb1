"""CPU and memory as placement resources on a real cluster: a worker of one core takes eight
containers of Modal's default request (0.125 of a core), a burst beyond that queues for their
slots instead of starting more, `stoker status` says why, and every request is served."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx

from tests.conftest import running_cluster, wait_until

BURST = 12
ROOM = 8  # 1 core / 0.125


def test_a_burst_beyond_the_workers_cores_queues_for_slots_and_status_says_why(
    tmp_path: Path, shared_tmp: Path
) -> None:
    gate = shared_tmp / "open"
    with running_cluster(tmp_path, STOKER_WORKER_CPUS="1") as cluster:
        url = cluster.deploy("resources.py")["hold"]
        answers: list[httpx.Response] = []

        def ask() -> None:
            with httpx.Client(timeout=120) as client:
                answers.append(client.get(url, params={"gate": str(gate)}))

        threads = [threading.Thread(target=ask) for _ in range(BURST)]
        for thread in threads:
            thread.start()
        try:
            queued = lambda: [f.queued for f in cluster.status().functions if f.function == "hold"]  # noqa: E731
            assert wait_until(lambda: queued() == [BURST - ROOM], 60), cluster.status()
            status = cluster.status()
            assert len([c for c in status.containers if c.function == "hold"]) == ROOM
            (worker,) = status.workers
            assert (worker.cpu_count, worker.cpu_reserved) == (1, 1.0)
            (function,) = [f for f in status.functions if f.function == "hold"]
            assert function.scaling.startswith("no worker has 0.125 CPU and 128 MiB free (1 of 1 CPUs")
            shown = cluster.stoker("status")
            assert f"resources.hold: {BURST - ROOM} queued, no container started: no worker has" in shown.stdout
        finally:
            gate.touch()
            for thread in threads:
                thread.join(120)
        assert [a.status_code for a in answers] == [200] * BURST
        containers = {json.loads(a.text)["pid"].rsplit(":", 1)[1] for a in answers}
        assert len(containers) == ROOM  # the queued requests went to the first eight, one at a time
        assert cluster.status().workers[0].cpu_reserved == 1.0  # still warm, within their scaledown window
