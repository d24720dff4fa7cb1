"""The edge rate limit on real clusters: a burst past it gets 429, and ingresses share it."""

from __future__ import annotations

import asyncio
import math
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    STARTUP_TIMEOUT,
    Cluster,
    running_cluster,
    split_url,
    start_extra_ingress,
    stop_process,
)

RATE = 5  # requests/s: a burst of 25
BURST = RATE * 5
SENT = 60


@dataclass
class Outcome:
    admitted: int
    refused: list[httpx.Response] = field(repr=False)
    window: float  # seconds from the first request sent to the last refusal answered

    def most_admitted(self, rate: float, burst: float) -> int:
        """The burst, plus what refills while the requests arrive, plus one for rounding."""
        return math.floor(burst + rate * self.window) + 1


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster whose limit is RATE requests/s."""
    with running_cluster(tmp_path, STOKER_RATE_LIMIT_RPS=str(RATE)) as c:
        yield c


def _get_until_ok(base: str, host: str, timeout: float = STARTUP_TIMEOUT) -> None:
    """One successful request (one token spent): the ingress routes the endpoint and a container is warm."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=timeout) as client:
        while True:
            response = client.get(base + "/?x=2", headers={"host": host})
            if response.status_code == 200:
                return
            assert time.monotonic() < deadline, f"{base} never served the endpoint: {response.text}"
            time.sleep(0.1)


async def _burst(targets: list[tuple[str, str]]) -> list[Outcome]:
    """SENT requests at once, split evenly across (base URL, Host) targets; an Outcome per target."""
    began = time.monotonic()
    refused_at: list[float] = []

    async def one(client: httpx.AsyncClient, base: str, host: str) -> httpx.Response:
        response = await client.get(base + "/?x=3", headers={"host": host})
        if response.status_code == 429:
            refused_at.append(time.monotonic())
        return response

    limits = httpx.Limits(max_connections=SENT, max_keepalive_connections=SENT)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        per_target = SENT // len(targets)
        batches = [[one(client, base, host) for _ in range(per_target)] for base, host in targets]
        results = await asyncio.gather(*(asyncio.gather(*batch) for batch in batches))
    window = max(refused_at, default=began) - began
    outcomes = []
    for responses in results:
        assert {r.status_code for r in responses} <= {200, 429}, [(r.status_code, r.text) for r in responses]
        assert all(r.json() == {"square": 9} for r in responses if r.status_code == 200)
        refused = [r for r in responses if r.status_code == 429]
        outcomes.append(Outcome(len(responses) - len(refused), refused, window))
    return outcomes


def test_a_burst_past_the_limit_gets_429_with_retry_after(limited: Cluster) -> None:
    url = limited.deploy("seed_query.py")["square"]
    base, host = split_url(url)
    _get_until_ok(base, host)
    time.sleep(1.0)  # the warm-up's token comes back: the bucket is full

    [outcome] = asyncio.run(_burst([(base, host)]))

    assert BURST <= outcome.admitted <= outcome.most_admitted(RATE, BURST), outcome
    for response in outcome.refused:
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["content-type"].startswith("text/plain")
        assert f"{RATE} requests/s" in response.text
    time.sleep(1.0)
    assert limited.get(url, "/?x=4").json() == {"square": 16}  # the limit refills


def test_two_ingresses_each_enforce_half_the_limit(limited: Cluster, tmp_path: Path) -> None:
    url = limited.deploy("seed_query.py")["square"]
    base, host = split_url(url)
    _get_until_ok(base, host)
    process, port = start_extra_ingress(limited, tmp_path)
    try:
        second = f"http://127.0.0.1:{port}"
        # The second ingress is told the ingress count before its routes, and the first at the same moment.
        _get_until_ok(second, host)
        time.sleep(1.0)  # both buckets refill to their new size, half the burst each

        outcomes = asyncio.run(_burst([(base, host), (second, host)]))

        for outcome in outcomes:
            assert BURST // 2 <= outcome.admitted <= outcome.most_admitted(RATE / 2, BURST / 2), outcomes
            assert all(int(r.headers["retry-after"]) >= 1 for r in outcome.refused)
        total = sum(outcome.admitted for outcome in outcomes)
        assert total <= outcomes[0].most_admitted(RATE, BURST), outcomes  # the cluster-wide limit holds
    finally:
        assert stop_process(process, signal.SIGTERM) == 0
