"""Classes: `@app.cls` registers one (`Cls`), `Model(size="large")` makes an instance (`Obj`),
and `Model().predict` is a method to call (`Method`: `.remote()` and friends, from Invocable).
`Cls.from_name(app, "Model")` finds a deployed class; its methods are looked up by the scheduler
at the first call, which refuses unknown ones with the names it has.

All methods of a class share one pool of containers, one instance in each; each distinct set of
parameter values is a pool of its own (the scheduler keys pools by protos/parameters.py).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from client import batching
from client.calls import CallTarget, lookup
from client.class_members import ClassMembers, has_default, read_members
from client.exceptions import InvalidError
from client.function import (
    FunctionOptions,
    Invocable,
    app_web_urls,
    require_app_name,
    spec_from_options,
    web_to_proto,
)
from client.with_options import Configurable, options_with, stack
from protos import container_env as cenv
from protos import parameters as wire_parameters
from protos import stoker_pb2 as pb

if TYPE_CHECKING:
    from client.app import App


class Cls(Configurable):
    """A class of an app (from `@app.cls`), or a deployed one (from `Cls.from_name`). Call it
    with its parameters as keyword arguments to get an instance. `with_options()` and
    `with_concurrency()` give a copy whose instances run in containers of their own."""

    _what = "Cls"

    def __init__(
        self,
        app_name: str | None,
        name: str,
        environment: str | None = None,
        user_cls: type | None = None,
        options: FunctionOptions | None = None,
        members: ClassMembers | None = None,
        app: App | None = None,
    ) -> None:
        self.app = app  # the app that defines it in this process; None for a class found by name
        self.app_name = app_name
        self.name = name
        self._environment = environment
        self.user_cls = user_cls  # None for a class found by name
        self.options = options
        self.members = members
        self._found: pb.LookupFunctionResponse | None = None

    def _with_overrides(self, more: pb.FunctionOverrides) -> Cls:
        options = options_with(self.options, more) if self.options is not None else None
        variant = Cls(self.app_name, self.name, self._environment, self.user_cls, options, self.members, self.app)
        variant._overrides = stack(self._overrides, more)
        variant._found = self._found
        return variant

    @staticmethod
    def of_app(app: App, name: str, user_cls: type, options: FunctionOptions) -> Cls:
        members = read_members(user_cls)
        batched = {m.name: m.batch for m in members.methods.values() if m.batch is not None}
        batching.check_class(name, batched, len(members.methods), options.max_inputs)
        return Cls(app.name, name, None, user_cls, options, members, app)

    @staticmethod
    def from_name(app_name: str, name: str, environment_name: str | None = None) -> Cls:
        """The class `name` of the deployed app `app_name`, looked up on first use."""
        if not app_name or not name:
            raise InvalidError("Cls.from_name needs an app name and a class name")
        return Cls(app_name, name, environment_name)

    def __repr__(self) -> str:
        return f"<Cls {self.app_name}.{self.name}>"

    @property
    def environment(self) -> str:
        return self._environment if self._environment is not None else os.environ.get(cenv.ENVIRONMENT, "")

    def __call__(self, *args: Any, **kwargs: Any) -> Obj:
        if args:
            raise InvalidError(f"{self.name}() takes its parameters as keyword arguments only")
        return Obj(self, kwargs, wire_parameters.encode(kwargs))

    def hydrate(self) -> Cls:
        """Look the class up now; raises NotFoundError when it does not exist."""
        if self._found is None:
            self._found = lookup(require_app_name(self.app_name, self.name), self.name, self.environment)
        return self

    def web_url(self, method: str) -> str | None:
        if self.members is not None:  # our own app's class, inside its containers
            return app_web_urls().get(f"{self.name}.{method}")
        self.hydrate()
        assert self._found is not None
        return next((e.url for e in self._found.method_urls if e.function == method), None)

    def to_proto(self) -> pb.FunctionSpec:
        assert self.options is not None and self.members is not None
        spec = spec_from_options(self.name, self.options)
        for info in self.members.methods.values():
            method = pb.MethodSpec(name=info.name, is_generator=info.is_generator)
            if info.batch is not None:
                method.batch_max_size = info.batch.max_batch_size
                method.batch_wait_ms = info.batch.wait_ms
            if info.web is not None:
                method.web.CopyFrom(web_to_proto(info.web))
            spec.methods.append(method)
        for name, (kind, default) in self.members.parameters.items():
            declared = pb.ParameterSpec(name=name, type=wire_parameters.TYPE_NAMES[kind])
            if has_default(default):
                declared.default.CopyFrom(wire_parameters.to_value(name, default))
            spec.parameters.append(declared)
        return spec


class Obj:
    """An instance of a class, as callers see it: its methods, to call remotely."""

    def __init__(self, cls: Cls, values: dict[str, Any], parameters: bytes) -> None:
        self._cls = cls
        self._values = values
        self._parameters = parameters

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"<{self._cls.name}({given}) of app {self._cls.app_name}>"

    def __getattr__(self, name: str) -> Method:
        if name.startswith("_"):
            raise AttributeError(name)
        members = self._cls.members
        if members is not None and name not in members.methods:
            known = ", ".join(sorted(members.methods))
            raise AttributeError(f"{self._cls.name} has no method {name!r} (it has: {known})")
        return Method(self._cls, name, self._parameters)


class Method(Invocable):
    """A method of a class instance: `.remote()`, `.remote_gen()`, `.map()`, `.starmap()`,
    `.spawn()` (each with `.aio`), and `get_web_url()` for a web method."""

    def __init__(self, cls: Cls, name: str, parameters: bytes) -> None:
        self._cls = cls
        self.name = name
        self._parameters = parameters

    def __repr__(self) -> str:
        return f"<Method {self._cls.app_name}.{self._cls.name}.{self.name}>"

    def _call_target(self) -> CallTarget:
        return CallTarget(
            app_name=require_app_name(self._cls.app_name, self._cls.name),
            function=self._cls.name,
            environment=self._cls.environment,
            method_name=self.name,
            parameters=self._parameters,
            # Inside `stoker run`, its own ephemeral app (client/function.py does the same).
            app_id=(self._cls.app.app_id or "") if self._cls.app is not None else "",
            options=self._cls._overrides,
        )

    def get_web_url(self) -> str | None:
        """The URL of this web method, as deploy printed it; None for other methods."""
        return self._cls.web_url(self.name)
