"""The edge rate limit's arithmetic, on a fake clock: bursts, refill, waits, workspaces, shares."""

from __future__ import annotations

import pytest

from ingress.ratelimit import RateLimiter, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def admitted(limiter: RateLimiter, workspace: str, attempts: int) -> int:
    return sum(limiter.check(workspace) == 0.0 for _ in range(attempts))


def test_the_burst_is_five_seconds_worth_then_requests_are_refused(clock: FakeClock) -> None:
    limiter = RateLimiter(200, clock=clock)
    assert admitted(limiter, "ws", 1500) == 1000


def test_a_refusal_says_how_long_until_a_token(clock: FakeClock) -> None:
    limiter = RateLimiter(5, clock=clock)
    assert admitted(limiter, "ws", 25) == 25
    assert limiter.check("ws") == pytest.approx(0.2)
    clock.now += 0.15
    assert limiter.check("ws") == pytest.approx(0.05)  # refused requests take nothing


def test_tokens_refill_at_the_rate_and_stop_at_the_burst(clock: FakeClock) -> None:
    limiter = RateLimiter(10, clock=clock)
    assert admitted(limiter, "ws", 50) == 50
    clock.now += 1.0
    assert admitted(limiter, "ws", 20) == 10
    clock.now += 3600.0
    assert admitted(limiter, "ws", 100) == 50


def test_workspaces_have_their_own_buckets(clock: FakeClock) -> None:
    limiter = RateLimiter(2, clock=clock)
    assert admitted(limiter, "a", 20) == 10
    assert limiter.check("a") > 0
    assert admitted(limiter, "b", 20) == 10


def test_each_of_n_ingresses_enforces_one_nth(clock: FakeClock) -> None:
    ingresses = [RateLimiter(200, clock=clock) for _ in range(4)]
    for limiter in ingresses:
        limiter.set_share(4)
    assert [admitted(limiter, "ws", 1000) for limiter in ingresses] == [250] * 4  # 1,000 in all
    clock.now += 1.0
    assert sum(admitted(limiter, "ws", 1000) for limiter in ingresses) == 200


def test_a_smaller_share_cuts_a_full_bucket_and_a_larger_one_refills_it(clock: FakeClock) -> None:
    limiter = RateLimiter(10, clock=clock)
    assert limiter.check("ws") == 0.0  # the bucket exists, 49 tokens left
    limiter.set_share(2)
    assert admitted(limiter, "ws", 100) == 25
    limiter.set_share(1)
    assert limiter.check("ws") > 0  # no new burst from the change
    clock.now += 10.0
    assert admitted(limiter, "ws", 100) == 50


def test_an_ingress_count_of_zero_counts_as_one(clock: FakeClock) -> None:
    limiter = RateLimiter(1, clock=clock)
    limiter.set_share(0)
    assert admitted(limiter, "ws", 10) == 5


def test_a_bucket_holds_at_least_one_token(clock: FakeClock) -> None:
    limiter = RateLimiter(0.1, clock=clock)
    limiter.set_share(10)  # 0.05 tokens of burst per ingress would admit nothing, ever
    assert admitted(limiter, "ws", 5) == 1
    assert limiter.check("ws") == pytest.approx(100.0)


def test_a_rate_of_zero_turns_the_limit_off(clock: FakeClock) -> None:
    assert admitted(RateLimiter(0, clock=clock), "ws", 10_000) == 10_000


def test_bucket_arithmetic() -> None:
    bucket = TokenBucket(rate=4, capacity=2, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.25]
    assert bucket.take(0.125) == pytest.approx(0.125)
    assert bucket.take(0.25) == 0.0
