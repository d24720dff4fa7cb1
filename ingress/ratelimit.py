"""The edge rate limit: a token bucket per workspace, checked before any container is touched.

Each workspace may make `rate` requests per second with a burst of `burst_seconds` worth
(default 200/s and 5 s: a bucket of 1,000). Past it the ingress answers 429.

Across ingresses: every ingress of a cluster enforces its share, `rate / N` with a bucket of
`burst / N`, where N is the `ingress_count` the scheduler last sent (EdgeConfig); no request
waits on a cross-process counter. The tolerance that buys:
- The cluster-wide limit holds exactly when traffic is spread evenly across the ingresses (as a
  round-robin balancer or DNS spreads it): N shares of 1/N add up to the limit.
- A client pinned to one ingress gets 1/N of the limit; traffic skewed between ingresses gets
  less than the limit, never more.
- While N changes, each ingress uses the old share until the scheduler's new EdgeConfig arrives
  (milliseconds); on a smaller share a bucket is cut to the new size, on a larger one it grows by
  refilling, so a change never grants an extra burst.
- A bucket holds at least one token, so when burst / N < 1 each ingress still admits one request
  at a time and the cluster admits up to N at once.

Single event loop, so no locks; `check()` does one dict lookup, one clock read and arithmetic.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_BURST_SECONDS = 5.0


class TokenBucket:
    """`capacity` tokens, refilled at `rate` per second; one request takes one token."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity  # a new bucket starts full
        self.updated = now

    def take(self, now: float) -> float:
        """Take a token: 0.0 when one was there, else the seconds until one will be."""
        tokens = self.tokens + (now - self.updated) * self.rate
        if tokens > self.capacity:
            tokens = self.capacity
        self.updated = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate

    def resize(self, rate: float, capacity: float, now: float) -> None:
        """Refill at the old rate up to `now`, then switch; the tokens held never exceed the new capacity."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate, capacity)
        self.updated = now
        self.rate = rate
        self.capacity = capacity


class RateLimiter:
    """Per-workspace token buckets; `rate <= 0` turns the limit off."""

    def __init__(
        self,
        rate: float,
        burst_seconds: float = DEFAULT_BURST_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate  # the cluster-wide limit, requests per second
        self.burst_seconds = burst_seconds
        self.clock = clock
        self.enabled = rate > 0
        self.share = 1  # how many ingresses split the limit
        # One bucket per workspace; workspaces come from the scheduler's route table, not from
        # clients, so this stays as small as the cluster's list of workspaces.
        self._buckets: dict[str, TokenBucket] = {}
        self._rate, self._capacity = self._sizes()

    def _sizes(self) -> tuple[float, float]:
        rate = self.rate / self.share
        return rate, max(rate * self.burst_seconds, 1.0)

    def check(self, workspace: str) -> float:
        """0.0 when the request may go on, else the seconds until the workspace has a token."""
        if not self.enabled:
            return 0.0
        bucket = self._buckets.get(workspace)
        now = self.clock()
        if bucket is None:
            bucket = self._buckets[workspace] = TokenBucket(self._rate, self._capacity, now)
        return bucket.take(now)

    def set_share(self, ingress_count: int) -> None:
        """Enforce 1/`ingress_count` of the limit here: the cluster has that many ingresses."""
        share = max(1, ingress_count)
        if share == self.share:
            return
        self.share = share
        self._rate, self._capacity = self._sizes()
        now = self.clock()
        for bucket in self._buckets.values():
            bucket.resize(self._rate, self._capacity, now)

    def describe(self) -> str:
        """The limit in words, for the 429 body."""
        return f"{self.rate:g} requests/s (bursts of up to {self.rate * self.burst_seconds:g})"
