"""`modal.Retries`: the policy by which the scheduler runs a failed function call again."""

from __future__ import annotations

from dataclasses import dataclass

from client.exceptions import InvalidError
from protos import stoker_pb2 as pb

MAX_RETRIES = 10
MAX_DELAY = 60.0  # seconds, Modal's bound on any one delay


@dataclass(frozen=True, init=False)
class Retries:
    """Run a failed call again, up to `max_retries` times, waiting `initial_delay` seconds before
    the first retry and `backoff_coefficient` times longer before each next one, never more than
    `max_delay`. A call fails when its function raises (a timeout included) or its container
    stops during it; the caller sees the last failure. Web requests are never retried.

    `@app.function(retries=3)` is `Retries(max_retries=3, backoff_coefficient=1.0, initial_delay=1.0)`."""

    max_retries: int
    backoff_coefficient: float
    initial_delay: float
    max_delay: float

    def __init__(
        self,
        *,
        max_retries: int,
        backoff_coefficient: float = 2.0,
        initial_delay: float = 1.0,
        max_delay: float = 60.0,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int):
            raise InvalidError(f"Invalid retries number: {max_retries!r}. Retries must be an integer.")
        if max_retries < 0:
            raise InvalidError(f"Invalid retries number: {max_retries}. Function retries must be non-negative.")
        if max_retries > MAX_RETRIES:
            raise InvalidError(f"Invalid retries number: {max_retries}. Retries must be between 0 and {MAX_RETRIES}.")
        if max_delay < 1.0:
            raise InvalidError(f"Invalid max_delay: {max_delay}. max_delay must be at least 1 second.")
        if max_delay > MAX_DELAY:
            raise InvalidError(f"Invalid max_delay argument: {max_delay}. Must be between 1-{MAX_DELAY:g} seconds.")
        if initial_delay < 0.0:
            raise InvalidError(f"Invalid initial_delay argument: {initial_delay}. Delay must be positive.")
        if initial_delay > MAX_DELAY:
            raise InvalidError(
                f"Invalid initial_delay argument: {initial_delay}. Must be between 0-{MAX_DELAY:g} seconds."
            )
        if not 1.0 <= backoff_coefficient <= 10.0:
            raise InvalidError(
                f"Invalid backoff_coefficient: {backoff_coefficient}. "
                "Coefficient must be between 1.0 (fixed-interval backoff) and 10.0"
            )
        object.__setattr__(self, "max_retries", max_retries)
        object.__setattr__(self, "backoff_coefficient", float(backoff_coefficient))
        object.__setattr__(self, "initial_delay", float(initial_delay))
        object.__setattr__(self, "max_delay", float(max_delay))

    def to_proto(self) -> pb.RetryPolicy:
        return pb.RetryPolicy(
            max_retries=self.max_retries,
            backoff_coefficient=self.backoff_coefficient,
            initial_delay=self.initial_delay,
            max_delay=self.max_delay,
        )


def parse_retries(retries: int | Retries | None, where: str) -> Retries | None:
    """What `retries=` of a decorator means; None: no retries."""
    if retries is None:
        return None
    if isinstance(retries, Retries):
        return retries
    if isinstance(retries, int) and not isinstance(retries, bool):
        return Retries(max_retries=retries, backoff_coefficient=1.0, initial_delay=1.0)
    raise InvalidError(
        f"Retries parameter must be an integer or instance of modal.Retries. Found: {type(retries)} on {where}."
    )
