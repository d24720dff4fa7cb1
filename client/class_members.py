"""What an `@app.cls` class body declares: `modal.parameter()` fields, `@modal.method()`,
`@modal.enter()` and `@modal.exit()` hooks, and web endpoints (the web decorators of
client/partial.py on methods); and reading them off a class, once, when `@app.cls` decorates it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from client.batching import BatchConfig
from client.exceptions import InvalidError
from client.partial import PartialFunction, WebConfig

PARAMETER_TYPES: tuple[type, ...] = (str, int, bool, bytes)

_NO_DEFAULT: Any = object()


@dataclass(frozen=True)
class _Parameter:
    default: Any = _NO_DEFAULT
    init: bool = True


def parameter(*, default: Any = _NO_DEFAULT, init: bool = True) -> Any:
    """A field of an `@app.cls` class that callers set per instance: `Model(size="large")`.
    Each distinct set of values gets containers of its own. Types: str, int, bool, bytes."""
    if not init:
        raise InvalidError("modal.parameter(init=False) is not supported yet")
    return _Parameter(default=default)


@dataclass(frozen=True)
class Method:
    raw_f: Callable[..., Any]
    is_generator: bool | None = None


@dataclass(frozen=True)
class Hook:
    raw_f: Callable[..., Any]
    stage: str  # enter_snap | enter | exit


def method(_warn_parentheses_missing: Any = None, *, is_generator: bool | None = None) -> Callable[[Any], Method]:
    """Make a method of an `@app.cls` class callable with `.remote()` and friends."""
    if _warn_parentheses_missing is not None:
        raise InvalidError("use @modal.method() with parentheses")

    def wrap(f: Any) -> Method:
        if not callable(f) or isinstance(f, (Method, Hook, PartialFunction)):
            raise InvalidError("@modal.method() must decorate a plain method, under no other stoker decorator")
        return Method(raw_f=f, is_generator=is_generator)

    return wrap


def _hook(stage: str, what: str) -> Callable[[Any], Hook]:
    def wrap(f: Any) -> Hook:
        if not callable(f) or isinstance(f, (Method, Hook, PartialFunction)):
            raise InvalidError(f"@modal.{what}() must decorate a plain method, under no other stoker decorator")
        if len(inspect.signature(f).parameters) != 1:
            raise InvalidError(f"@modal.{what}() method {f.__name__} must take only self")
        return Hook(raw_f=f, stage=stage)

    return wrap


def enter(_warn_parentheses_missing: Any = None, *, snap: bool = False) -> Callable[[Any], Hook]:
    """Run the method once in each container, before its first input (load a model here)."""
    if _warn_parentheses_missing is not None:
        raise InvalidError("use @modal.enter() with parentheses")
    return _hook("enter_snap" if snap else "enter", "enter")


def exit(_warn_parentheses_missing: Any = None) -> Callable[[Any], Hook]:  # Modal's name
    """Run the method when the container stops (scale-down, redeploy, app stop), with a bounded
    grace period."""
    if _warn_parentheses_missing is not None:
        raise InvalidError("use @modal.exit() with parentheses")
    return _hook("exit", "exit")


@dataclass(frozen=True)
class MethodInfo:
    """One remotely callable or web method of a class."""

    name: str
    raw_f: Callable[..., Any]
    web: WebConfig | None
    is_generator: bool
    batch: BatchConfig | None = None  # @modal.batched on the method


@dataclass(frozen=True)
class ClassMembers:
    parameters: dict[str, tuple[type, Any]]  # name -> (type, default or _NO_DEFAULT)
    methods: dict[str, MethodInfo]
    hooks: tuple[Hook, ...]  # in the order the class body defines them

    def hooks_of(self, stage: str) -> list[Hook]:
        return [h for h in self.hooks if h.stage == stage]


def read_members(user_cls: type) -> ClassMembers:
    """The class's parameters, methods and hooks; InvalidError for what stoker cannot serve."""
    name = user_cls.__name__
    parameters: dict[str, tuple[type, Any]] = {}
    annotations = inspect.get_annotations(user_cls, eval_str=False)
    for attr, value in vars(user_cls).items():
        if not isinstance(value, _Parameter):
            continue
        kind = _parameter_type(name, attr, annotations.get(attr))
        if value.default is not _NO_DEFAULT and type(value.default) is not kind:
            raise InvalidError(f"{name}.{attr}: default {value.default!r} is not a {kind.__name__}")
        parameters[attr] = (kind, value.default)
    methods: dict[str, MethodInfo] = {}
    hooks: list[Hook] = []
    for attr, value in vars(user_cls).items():
        if isinstance(value, Hook):
            hooks.append(value)
        elif isinstance(value, Method):
            gen = value.is_generator
            if gen is None:
                gen = inspect.isgeneratorfunction(value.raw_f) or inspect.isasyncgenfunction(value.raw_f)
            methods[attr] = MethodInfo(attr, value.raw_f, None, gen)
        elif isinstance(value, PartialFunction):
            if value.max_inputs is not None:
                raise InvalidError(f"{name}.{attr}: put @modal.concurrent on the class, not on a method")
            if value.batch is not None:  # @modal.batched makes it callable, as @modal.method() does
                methods[attr] = MethodInfo(attr, value.raw_f, None, False, value.batch)
                continue
            if value.web is None:
                raise InvalidError(f"{name}.{attr}: decorate it with @modal.method() or a web decorator")
            methods[attr] = MethodInfo(attr, value.raw_f, value.web, False)
    if not methods:
        raise InvalidError(
            f"class {name} has no methods to serve: decorate one with @modal.method() or a web decorator"
        )
    return ClassMembers(parameters=parameters, methods=methods, hooks=tuple(hooks))


def _parameter_type(cls_name: str, attr: str, annotation: Any) -> type:
    names = {t.__name__: t for t in PARAMETER_TYPES}
    kind = names.get(annotation) if isinstance(annotation, str) else annotation
    if kind not in PARAMETER_TYPES:
        raise InvalidError(
            f"{cls_name}.{attr}: a modal.parameter() needs a type annotation of str, int, bool or bytes "
            f"(got {annotation!r})"
        )
    assert isinstance(kind, type)
    return kind


def has_default(value: Any) -> bool:
    return value is not _NO_DEFAULT
