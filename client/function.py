"""Functions: those registered on an App (`Function`), the handles `Function.from_name` returns
(`FunctionHandle`), and the call methods both have (`Invocable`: `.remote()`, `.remote_gen()`,
`.map()`, `.starmap()`, `.spawn()`, each with its `.aio` form). The calls travel by client/calls.py."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from client import modal_names
from client.aio import async_iterable, awaitable
from client.calls import CallTarget, FunctionCall, call, call_gen, lookup, map_calls, spawn
from client.exceptions import InvalidError
from client.image import Image
from client.partial import WebConfig
from client.retries import Retries
from client.secret import Secret
from client.with_options import Configurable, options_with, stack
from protos import container_env as cenv
from protos import stoker_pb2 as pb

if TYPE_CHECKING:
    from client.app import App


@dataclass(frozen=True)
class FunctionOptions:
    """What `@app.function(...)` was told, in Modal's names."""

    image: Image | None = None
    gpu: str = ""
    secrets: tuple[Secret, ...] = ()
    min_containers: int = 0
    max_containers: int = 0  # 0: no limit
    buffer_containers: int = 0
    scaledown_window: float = 60.0
    timeout: float = 300.0  # seconds per input
    startup_timeout: float = 300.0  # seconds for a container's start, @modal.enter hooks included
    retries: Retries | None = None
    max_inputs: int = 1
    target_inputs: int = 0
    cpu: float = 0.0  # cores requested
    cpu_limit: float = 0.0  # cores at most; 0: no limit
    memory_mib: int = 0  # requested
    memory_limit_mib: int = 0  # past it the container is killed; 0: no limit
    batch_max_size: int = 0  # @modal.batched; 0: not batched
    batch_wait_ms: int = 0
    enable_memory_snapshot: bool = False  # containers fork from a template that ran the imports and snap=True hooks
    block_network: bool = False  # its containers open no connection of their own


def app_web_urls() -> dict[str, str]:
    """Inside a container: the URLs of its app's web functions and web methods, by name
    (`square`, `Model.web`), as the scheduler gave them (protos/container_env.py WEB_URLS)."""
    urls: dict[str, str] = json.loads(os.environ.get(cenv.WEB_URLS, "{}"))
    return urls


def require_app_name(app_name: str | None, what: str) -> str:
    """The name of the app `what` belongs to, which calls need to find it."""
    if not app_name:
        raise InvalidError(f"{what} belongs to an app without a name: give modal.App a name to call it")
    return app_name


class Invocable:
    """The call methods shared by an app's own `Function` and the handle `Function.from_name`
    returns. Subclasses say where calls go and what they know of the function."""

    def _call_target(self) -> CallTarget:
        raise NotImplementedError

    @awaitable
    def remote(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function in a container of its app and return its result."""
        return call(self._call_target(), args, kwargs)

    @async_iterable
    def remote_gen(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Run a generator function remotely; iterate to get each item as it is yielded."""
        return call_gen(self._call_target(), args, kwargs)

    @async_iterable
    def map(
        self,
        *input_iterators: Iterable[Any],
        kwargs: dict[str, Any] | None = None,
        order_outputs: bool = True,
        return_exceptions: bool = False,
    ) -> Iterator[Any]:
        """Call the function once per input (zipping several iterables into positional
        arguments), in parallel over containers; yield the results in input order, or as they
        finish with order_outputs=False. With return_exceptions=True an input that raised yields
        its exception instead of raising it."""
        if not input_iterators:
            raise InvalidError(".map() needs at least one iterable of inputs")
        target = self._call_target()
        return map_calls(target, zip(*input_iterators, strict=False), kwargs or {}, order_outputs, return_exceptions)

    @async_iterable
    def starmap(
        self,
        input_iterator: Iterable[Iterable[Any]],
        kwargs: dict[str, Any] | None = None,
        order_outputs: bool = True,
        return_exceptions: bool = False,
    ) -> Iterator[Any]:
        """Like map, each input being a sequence of positional arguments."""
        target = self._call_target()
        inputs = (tuple(args) for args in input_iterator)
        return map_calls(target, inputs, kwargs or {}, order_outputs, return_exceptions)

    @awaitable
    def spawn(self, *args: Any, **kwargs: Any) -> FunctionCall:
        """Start the call and return at once; `.get()` on the handle waits for the result."""
        return spawn(self._call_target(), args, kwargs)


class FunctionHandle(Invocable, Configurable):
    """A deployed function, found by name (`Function.from_name`). As in Modal, the name is
    looked up on first use (a call, `get_web_url()` or `hydrate()`), so app files may create
    handles at import time; an unknown app or function raises NotFoundError then."""

    def __init__(self, target: CallTarget) -> None:
        self.target = target
        self._found: pb.LookupFunctionResponse | None = None

    def _with_overrides(self, more: pb.FunctionOverrides) -> FunctionHandle:
        variant = FunctionHandle(dataclasses.replace(self.target, options=stack(self.target.options, more)))
        variant._found = self._found
        return variant

    def __repr__(self) -> str:
        return f"<Function {self.target.app_name}.{self.target.function}>"

    if not TYPE_CHECKING:  # at runtime only, so that mypy still checks attribute names

        def __getattr__(self, name: str) -> Any:
            modal_names.missing_attribute(self, "Function", name)

    def hydrate(self) -> FunctionHandle:
        """Look the function up now; raises NotFoundError when it does not exist."""
        if self._found is None:
            self._found = lookup(self.target.app_name, self.target.function, self.target.environment)
        return self

    @property
    def _lookup(self) -> pb.LookupFunctionResponse:
        self.hydrate()
        assert self._found is not None
        return self._found

    def _call_target(self) -> CallTarget:
        return self.target

    def get_web_url(self) -> str | None:
        """The function's URL, as deploy printed it; None when it is not a web function."""
        return self._lookup.web_url or None


class Function(Invocable, Configurable):
    """A function of an app. Calling it runs it here, in this process; `.remote()`,
    `.remote_gen()`, `.map()` and `.spawn()` run it in its app's containers."""

    def __init__(
        self,
        app: App,
        name: str,
        raw_f: Callable[..., Any],
        options: FunctionOptions,
        web: WebConfig | None,
        overrides: bytes = b"",
    ) -> None:
        self.app = app
        self.name = name
        self.raw_f = raw_f
        self.options = options  # with `overrides` applied
        self.web = web
        self._overrides = overrides  # from with_options(): its calls go to a pool of their own
        self.__doc__ = raw_f.__doc__

    def _with_overrides(self, more: pb.FunctionOverrides) -> Function:
        options = options_with(self.options, more)
        return Function(self.app, self.name, self.raw_f, options, self.web, stack(self._overrides, more))

    def __repr__(self) -> str:
        return f"<Function {self.app.name}.{self.name}>"

    if not TYPE_CHECKING:  # at runtime only, so that mypy still checks attribute names

        def __getattr__(self, name: str) -> Any:
            modal_names.missing_attribute(self, "Function", name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.raw_f(*args, **kwargs)

    def local(self, *args: Any, **kwargs: Any) -> Any:
        return self.raw_f(*args, **kwargs)

    @staticmethod
    def from_name(app_name: str, name: str, environment_name: str | None = None) -> FunctionHandle:
        """The function `name` of the deployed app `app_name`, to call or to ask its URL. It is
        looked up on first use, which raises NotFoundError when there is no such app or function."""
        if not app_name or not name:
            raise InvalidError("Function.from_name needs an app name and a function name")
        environment = environment_name if environment_name is not None else os.environ.get(cenv.ENVIRONMENT, "")
        target = CallTarget(app_name=app_name, function=name, environment=environment)
        return FunctionHandle(target)

    def _call_target(self) -> CallTarget:
        app_name = require_app_name(self.app.name, self.name)
        environment = os.environ.get(cenv.ENVIRONMENT, "")
        # While this process runs the app (`stoker run`), calls reach that run, not a deployed namesake.
        return CallTarget(app_name, self.name, environment, app_id=self.app.app_id or "", options=self._overrides)

    @property
    def is_generator(self) -> bool:
        """Whether the function yields (then it is called with `.remote_gen()`)."""
        return inspect.isgeneratorfunction(self.raw_f) or inspect.isasyncgenfunction(self.raw_f)

    def get_web_url(self) -> str | None:
        """The URL of this web function, as deploy printed it; None for other functions."""
        if self.web is None:
            return None
        return app_web_urls().get(self.name)

    def to_proto(self) -> pb.FunctionSpec:
        spec = spec_from_options(self.name, self.options)
        spec.is_generator = self.is_generator
        if self.web is not None:
            spec.web.CopyFrom(web_to_proto(self.web))
        return spec


def spec_from_options(name: str, o: FunctionOptions) -> pb.FunctionSpec:
    """The spec of a function or class, as far as its options say."""
    return pb.FunctionSpec(
        name=name,
        image=o.image.to_proto() if o.image else None,
        gpu=o.gpu,
        secret_names=[s.name for s in o.secrets if s.name],
        secret_env={k: v for s in o.secrets for k, v in s.values},
        min_containers=o.min_containers,
        max_containers=o.max_containers,
        buffer_containers=o.buffer_containers,
        scaledown_window=o.scaledown_window,
        timeout=o.timeout,
        max_inputs=o.max_inputs,
        target_inputs=o.target_inputs,
        cpu=o.cpu,
        cpu_limit=o.cpu_limit,
        memory_mib=o.memory_mib,
        memory_limit_mib=o.memory_limit_mib,
        batch_max_size=o.batch_max_size,
        batch_wait_ms=o.batch_wait_ms,
        retries=o.retries.to_proto() if o.retries is not None else None,
        startup_timeout=o.startup_timeout,
        enable_memory_snapshot=o.enable_memory_snapshot,
        block_network=o.block_network,
    )


def web_to_proto(w: WebConfig) -> pb.WebEndpoint:
    return pb.WebEndpoint(
        kind=w.kind,
        method=w.method,
        label=w.label,
        custom_domains=list(w.custom_domains),
        docs=w.docs,
        requires_proxy_auth=w.requires_proxy_auth,
        port=w.port,
        startup_timeout=w.startup_timeout,
    )
