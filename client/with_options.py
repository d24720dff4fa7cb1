"""`with_options()` and `with_concurrency()` of Functions and Classes, with Modal's names: a copy
of the function or class whose calls run in a pool of containers of its own, with the options
given overriding the deployed ones (an independent pool, scaled on its own).

The overrides travel with each call (CallRequest.options); the scheduler derives the pool's spec
from the deployed one (protos/overrides.py). Calls stacked as `.with_options(a).with_options(b)`
combine, later values winning field by field; secrets given later replace earlier ones whole, as
on Modal. Options cannot be unset: `gpu=None` keeps the deployed GPU. Web endpoints reached by URL
always run with the deployed options.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Self, TypeVar

from client import modal_names
from client.exceptions import InvalidError
from client.partial import concurrent
from client.resources import cpu_pair, memory_pair
from client.retries import Retries, parse_retries
from client.secret import Secret
from protos import overrides as wire_overrides
from protos import stoker_pb2 as pb

if TYPE_CHECKING:
    from client.function import FunctionOptions

# Modal's with_options() parameters that stoker lacks, refused when given, and those that change
# nothing here.
UNSUPPORTED = frozenset({"volumes"})
IGNORED = {name: modal_names.IGNORED_FUNCTION_OPTIONS[name] for name in ("region", "cloud", "routing_region")}


class Configurable:
    """What Function, the handle Function.from_name returns, and Cls share: with_options() and
    with_concurrency(). Subclasses hold the overrides so far (`_overrides`, canonical bytes) and
    make their copy with more of them (`_with_overrides`)."""

    _overrides: bytes = b""
    _what = "Function"  # as messages name the class

    def _with_overrides(self, more: pb.FunctionOverrides) -> Self:
        raise NotImplementedError

    def with_options(
        self,
        *,
        cpu: float | tuple[float, float] | None = None,
        memory: int | tuple[int, int] | None = None,
        gpu: str | list[str] | None = None,
        env: dict[str, str | None] | None = None,
        secrets: Collection[Secret] | None = None,
        volumes: dict[Any, Any] | None = None,
        retries: int | Retries | None = None,
        max_containers: int | None = None,
        buffer_containers: int | None = None,
        scaledown_window: float | None = None,
        timeout: float | None = None,
        region: str | Sequence[str] | None = None,
        cloud: str | None = None,
        routing_region: str | None = None,
    ) -> Self:
        """A copy whose calls run with these options, in containers of its own that scale
        independently of the deployed ones. Stacks: `.with_options(gpu="A10G").with_options(timeout=60)`.
        Secrets (and `env`, an inline secret) replace the function's secrets."""
        modal_names.check_options(
            f"{self._what}.with_options()",
            dict(volumes=volumes, region=region, cloud=cloud, routing_region=routing_region),
            UNSUPPORTED,
            IGNORED,
        )
        o = pb.FunctionOverrides()
        # A number or a pair replaces the function's request and limit both (no limit: 0).
        if cpu is not None:
            o.cpu, o.cpu_limit = cpu_pair(cpu, "with_options")
        if memory is not None:
            o.memory_mib, o.memory_limit_mib = memory_pair(memory, "with_options")  # MiB, as @app.function(memory=)
        if gpu is not None:
            o.gpu = gpu if isinstance(gpu, str) else ",".join(gpu)
        given = [*(secrets or ()), *([Secret.from_dict(env)] if env else [])]
        if given:
            if not all(isinstance(s, Secret) for s in given):
                raise InvalidError("with_options(secrets=...) takes a list of modal.Secret")
            o.replace_secrets = True
            o.secret_names.extend(s.name for s in given if s.name)
            o.secret_env.update({k: v for s in given for k, v in s.values})
        policy = parse_retries(retries, f"{self._what}.with_options()")
        if policy is not None:
            o.retries.CopyFrom(policy.to_proto())
        for name, value in (
            ("max_containers", max_containers),
            ("buffer_containers", buffer_containers),
            ("scaledown_window", scaledown_window),
            ("timeout", timeout),
        ):
            if value is not None:
                setattr(o, name, _number(name, value))
        return self._checked(o)

    def with_concurrency(self, *, max_inputs: int, target_inputs: int | None = None) -> Self:
        """A copy whose containers (of their own, as with with_options()) each run up to
        `max_inputs` inputs at once, as `@modal.concurrent` would; scaled for `target_inputs`."""
        concurrent(max_inputs=max_inputs, target_inputs=target_inputs)  # its checks, its messages
        return self._checked(pb.FunctionOverrides(max_inputs=max_inputs, target_inputs=target_inputs or 0))

    def _checked(self, more: pb.FunctionOverrides) -> Self:
        try:
            wire_overrides.check(more)
        except wire_overrides.OverrideError as exc:
            raise InvalidError(str(exc)) from None
        return self._with_overrides(more)


C = TypeVar("C", bound=Configurable)


def in_pool(target: C, overrides: bytes) -> C:
    """Inside a container of a pool of with_options(): the function or class as the pool runs it."""
    return target._with_overrides(wire_overrides.parse(overrides))


def stack(earlier: bytes, more: pb.FunctionOverrides) -> bytes:
    """The canonical bytes of `more` over the overrides so far."""
    return wire_overrides.canonical(wire_overrides.stacked(wire_overrides.parse(earlier), more))


def options_with(options: FunctionOptions, o: pb.FunctionOverrides) -> FunctionOptions:
    """The SDK's options of a function or class as its pool runs it (a container applies its
    pool's overrides to them: concurrency and timeout are the container's to keep)."""
    changed: dict[str, Any] = {name: getattr(o, name) for name in wire_overrides.SCALARS if o.HasField(name)}
    if o.replace_secrets:
        inline = (Secret(values=tuple(sorted(o.secret_env.items()))),) if o.secret_env else ()
        changed["secrets"] = (*(Secret.from_name(n) for n in o.secret_names), *inline)
    return dataclasses.replace(options, **changed)


def _number(name: str, value: Any) -> float:
    whole = name not in ("cpu", "scaledown_window", "timeout")
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        raise InvalidError(f"with_options({name}={value!r}): {name} must be {'an integer' if whole else 'a number'}")
    return int(value) if whole else float(value)
