"""`timeout=`, `startup_timeout=` and `retries=` as the SDK records them, Modal's limits on each,
and the scheduler's arithmetic of retry delays."""

from __future__ import annotations

import importlib

import pytest

import client
from client.app import App
from client.exceptions import InvalidError
from protos import stoker_pb2 as pb
from scheduler.retry_policy import max_retries, retry_delay


def handler() -> str:
    return "ok"


def spec_of(app: App, **options: object) -> pb.FunctionSpec:
    return app.function(**options)(handler).to_proto()


def test_timeout_defaults_to_300_s_and_startup_timeout_to_the_timeout(app: App) -> None:
    spec = spec_of(app)
    assert (spec.timeout, spec.startup_timeout) == (300.0, 300.0)
    spec = spec_of(app, timeout=20, name="h2")
    assert (spec.timeout, spec.startup_timeout) == (20.0, 20.0)
    spec = spec_of(app, timeout=20, startup_timeout=600, name="h3")
    assert (spec.timeout, spec.startup_timeout) == (20.0, 600.0)


@pytest.mark.parametrize("option", ["timeout", "startup_timeout"])
@pytest.mark.parametrize("value", [0, 0.5, -1, 24 * 3600 + 1])
def test_timeouts_outside_1_s_to_24_h_are_refused_with_the_range(app: App, option: str, value: float) -> None:
    with pytest.raises(InvalidError, match=rf"{option} must be between 1 second and 24 hours \(86400 s\)"):
        spec_of(app, **{option: value})


def test_the_bounds_themselves_are_accepted(app: App) -> None:
    assert spec_of(app, timeout=1).timeout == 1.0
    assert spec_of(app, timeout=24 * 3600, name="h2").timeout == 86400.0


def test_the_class_decorator_checks_the_same_limits(app: App) -> None:
    with pytest.raises(InvalidError, match="timeout must be between"):
        app.cls(timeout=0)(type("Model", (), {}))


def test_no_retries_by_default(app: App) -> None:
    spec = spec_of(app)
    assert not spec.HasField("retries") and max_retries(spec) == 0


def test_an_int_is_that_many_retries_a_second_apart(app: App) -> None:
    retries = spec_of(app, retries=3).retries
    assert (retries.max_retries, retries.backoff_coefficient, retries.initial_delay, retries.max_delay) == (
        3,
        1.0,
        1.0,
        60.0,
    )


def test_a_retries_policy_travels_whole(app: App) -> None:
    policy = client.Retries(max_retries=4, backoff_coefficient=3.0, initial_delay=0.5, max_delay=10.0)
    retries = spec_of(app, retries=policy).retries
    assert (retries.max_retries, retries.backoff_coefficient, retries.initial_delay, retries.max_delay) == (
        4,
        3.0,
        0.5,
        10.0,
    )


def test_zero_retries_is_allowed(app: App) -> None:
    assert max_retries(spec_of(app, retries=0)) == 0


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"max_retries": -1}, "must be non-negative"),
        ({"max_retries": 11}, "between 0 and 10"),
        ({"max_retries": 1, "max_delay": 0.5}, "at least 1 second"),
        ({"max_retries": 1, "max_delay": 61}, "Must be between 1-60 seconds"),
        ({"max_retries": 1, "initial_delay": -1}, "Delay must be positive"),
        ({"max_retries": 1, "initial_delay": 61}, "Must be between 0-60 seconds"),
        ({"max_retries": 1, "backoff_coefficient": 0.5}, "between 1.0"),
        ({"max_retries": 1, "backoff_coefficient": 11}, "and 10.0"),
    ],
)
def test_retries_outside_modals_limits_are_refused(kwargs: dict[str, float], words: str) -> None:
    with pytest.raises(InvalidError, match=words):
        client.Retries(**kwargs)  # type: ignore[arg-type]


def test_retries_of_another_type_are_refused(app: App) -> None:
    with pytest.raises(InvalidError, match=r"must be an integer or instance of modal\.Retries"):
        spec_of(app, retries="3")
    with pytest.raises(InvalidError, match=r"must be an integer or instance of modal\.Retries"):
        spec_of(app, retries=2.5, name="h2")


def test_delays_grow_by_the_coefficient_up_to_the_cap() -> None:
    policy = pb.RetryPolicy(max_retries=6, backoff_coefficient=2.0, initial_delay=1.0, max_delay=10.0)
    assert [retry_delay(policy, n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    fixed = pb.RetryPolicy(max_retries=3, backoff_coefficient=1.0, initial_delay=3.0, max_delay=60.0)
    assert [retry_delay(fixed, n) for n in range(1, 4)] == [3.0, 3.0, 3.0]


def test_function_timeout_error_is_modals() -> None:
    exception = importlib.import_module("client.exceptions")
    assert issubclass(exception.FunctionTimeoutError, exception.TimeoutError)
    assert issubclass(exception.TimeoutError, client.Error)
    assert not issubclass(exception.FunctionTimeoutError, TimeoutError)  # Modal's is not the builtin either
