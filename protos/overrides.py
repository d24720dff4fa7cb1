"""The options a call overrides (pb.FunctionOverrides, from `Function/Cls.with_options()` and
`with_concurrency()`), as the three ends see them: the SDK checks and stacks them (later calls win
field by field; secrets are replaced whole, as on Modal), the scheduler derives the pool's spec
from the deployed one (`apply`) and keys the pool by their canonical bytes, and the container
runs with them (the SDK's options, by the same field names).
"""

from __future__ import annotations

from typing import Literal, get_args

from google.protobuf.message import DecodeError

from protos import stoker_pb2 as pb

# The fields that FunctionOverrides, FunctionSpec and the SDK's FunctionOptions name alike.
Scalar = Literal[
    "cpu",
    "cpu_limit",
    "memory_mib",
    "memory_limit_mib",
    "gpu",
    "max_containers",
    "buffer_containers",
    "scaledown_window",
    "timeout",
    "max_inputs",
    "target_inputs",
]
SCALARS: tuple[Scalar, ...] = get_args(Scalar)
MIN_TIMEOUT = 1.0
MAX_TIMEOUT = 24 * 3600.0


class OverrideError(ValueError):
    """An override cannot be applied; the message says which and why."""


def check(o: pb.FunctionOverrides) -> None:
    """OverrideError for a value no function could run with (GPU names are the scheduler's to check)."""

    def bad(name: str, rule: str) -> OverrideError:
        shown = "memory" if name == "memory_mib" else name  # Modal's name of the parameter
        return OverrideError(f"with_options({shown}={getattr(o, name)!r}): {shown} must be {rule}")

    names: tuple[Scalar, ...] = ("cpu", "scaledown_window")
    for name in names:
        if o.HasField(name) and not getattr(o, name) > 0:
            raise bad(name, "a positive number")
    if o.HasField("memory_mib") and o.memory_mib <= 0:
        raise bad("memory_mib", "a positive number of MiB")
    pairs: tuple[tuple[Scalar, Scalar], ...] = (("cpu", "cpu_limit"), ("memory_mib", "memory_limit_mib"))
    for request, limit in pairs:
        if o.HasField(limit) and getattr(o, limit) and not getattr(o, limit) >= getattr(o, request):
            shown = "memory" if request == "memory_mib" else request
            raise OverrideError(
                f"with_options({shown}=({getattr(o, request)!r}, {getattr(o, limit)!r})): the limit must be at "
                "least the request"
            )
    names = ("max_containers", "buffer_containers")
    for name in names:
        if o.HasField(name) and getattr(o, name) < 0:
            raise bad(name, "at least 0")
    if o.HasField("timeout") and not MIN_TIMEOUT <= o.timeout <= MAX_TIMEOUT:
        raise bad("timeout", f"from {MIN_TIMEOUT:g} to {MAX_TIMEOUT:g} seconds (24 hours)")
    if o.HasField("max_inputs") and o.max_inputs < 1:
        raise OverrideError(f"with_concurrency(max_inputs={o.max_inputs}): max_inputs must be at least 1")
    if o.HasField("target_inputs") and o.target_inputs and not 1 <= o.target_inputs <= max(1, o.max_inputs):
        raise OverrideError(
            f"with_concurrency(target_inputs={o.target_inputs}): target_inputs must be between 1 and "
            f"max_inputs ({o.max_inputs})"
        )


def stacked(earlier: pb.FunctionOverrides, later: pb.FunctionOverrides) -> pb.FunctionOverrides:
    """`later` over `earlier`: each field `later` sets wins; its secrets, if any, replace earlier's."""
    result = pb.FunctionOverrides()
    result.CopyFrom(earlier)
    if later.replace_secrets:
        del result.secret_names[:]
        result.secret_env.clear()
    result.MergeFrom(later)
    if later.HasField("retries"):  # a policy is replaced whole, never merged field by field
        result.retries.CopyFrom(later.retries)
    return result


def canonical(o: pb.FunctionOverrides) -> bytes:
    """Bytes that equal overrides give alike, so that they name one pool; b"" for none."""
    return o.SerializeToString(deterministic=True)


def parse(data: bytes) -> pb.FunctionOverrides:
    """Canonical bytes back into overrides; OverrideError when they are not overrides."""
    try:
        return pb.FunctionOverrides.FromString(data)
    except DecodeError:
        raise OverrideError("the call's options are not a FunctionOverrides message") from None


def apply(spec: pb.FunctionSpec, o: pb.FunctionOverrides) -> pb.FunctionSpec:
    """The spec a pool of the function runs with: the deployed `spec` with `o` set."""
    result = pb.FunctionSpec()
    result.CopyFrom(spec)
    for name in SCALARS:
        if o.HasField(name):
            setattr(result, name, getattr(o, name))
    if o.replace_secrets:
        del result.secret_names[:]
        result.secret_names.extend(o.secret_names)
        result.secret_env.clear()
        result.secret_env.update(o.secret_env)
    if o.HasField("retries"):
        result.retries.CopyFrom(o.retries)
    return result


def describe(o: pb.FunctionOverrides) -> str:
    """`gpu='A10G', max_inputs=4`, for `stoker status` (secret names, never values)."""
    # target_inputs=0 (with_concurrency() without one) means "max_inputs", and a limit of 0 none:
    # nothing to say.
    unsaid_when_zero = ("target_inputs", "cpu_limit", "memory_limit_mib")
    shown = [name for name in SCALARS if o.HasField(name) and (name not in unsaid_when_zero or getattr(o, name))]
    parts = [f"{name}={getattr(o, name)!r}" for name in shown]
    if o.HasField("retries"):
        parts.append(f"retries={o.retries.max_retries}")
    if o.replace_secrets:
        secrets = [*o.secret_names, *(f"{key}=…" for key in sorted(o.secret_env))]
        parts.append(f"secrets=[{', '.join(secrets)}]")
    return ", ".join(parts)
