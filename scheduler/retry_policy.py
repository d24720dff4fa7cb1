"""Modal's retry policy of a function (FunctionSpec.retries), as plain arithmetic."""

from __future__ import annotations

from protos import stoker_pb2 as pb


def max_retries(spec: pb.FunctionSpec) -> int:
    return spec.retries.max_retries if spec.HasField("retries") else 0


def retry_delay(policy: pb.RetryPolicy, retry: int) -> float:
    """Seconds to wait before retry number `retry` (1 for the first)."""
    delay = policy.initial_delay * policy.backoff_coefficient ** (retry - 1)
    return float(min(delay, policy.max_delay))
