"""`App`: the object an app file creates and decorates its functions with."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from client import modal_names
from client.cls import Cls
from client.entrypoint import LocalEntrypoint
from client.exceptions import InvalidError
from client.function import Function, FunctionOptions
from client.image import Image
from client.partial import PartialFunction
from client.resources import cpu_pair, memory_pair
from client.retries import Retries, parse_retries
from client.secret import Secret
from protos.overrides import MAX_TIMEOUT  # Modal's bound on timeout= and startup_timeout=

# Every App created in this process, in order; the app-file loader reads it.
created_apps: list[App] = []


def _gpu_string(gpu: str | list[str] | None) -> str:
    if gpu is None:
        return ""
    if isinstance(gpu, str):
        return gpu
    return ",".join(gpu)


class App:
    """A named group of functions that is deployed and served together."""

    def __init__(
        self,
        name: str | None = None,
        *,
        image: Image | None = None,
        secrets: Sequence[Secret] = (),
        **modal_options: Any,
    ) -> None:
        modal_names.check_options(
            "modal.App()", modal_options, modal_names.APP_OPTIONS, modal_names.IGNORED_APP_OPTIONS
        )
        self.name = name
        self.image = image
        self.secrets = tuple(secrets)
        self.registered_functions: dict[str, Function] = {}
        self.registered_classes: dict[str, Cls] = {}
        self.registered_entrypoints: dict[str, LocalEntrypoint] = {}
        self._app_id: str | None = None  # set while this process runs the app (`stoker run`)
        created_apps.append(self)

    @property
    def app_id(self) -> str | None:
        """The id of the app while this process runs it (`stoker run`); None otherwise."""
        return self._app_id

    def __repr__(self) -> str:
        return f"<App {self.name!r}>"

    if not TYPE_CHECKING:  # at runtime only, so that mypy still checks attribute names

        def __getattr__(self, name: str) -> Any:
            modal_names.missing_attribute(self, "App", name)

    def function(
        self,
        _warn_parentheses_missing: Any = None,
        *,
        image: Image | None = None,
        gpu: str | list[str] | None = None,
        secrets: Sequence[Secret] = (),
        min_containers: int | None = None,
        max_containers: int | None = None,
        buffer_containers: int | None = None,
        scaledown_window: float | None = None,
        timeout: float | None = None,
        startup_timeout: float | None = None,
        retries: int | Retries | None = None,
        cpu: float | tuple[float, float] | None = None,
        memory: int | tuple[int, int] | None = None,
        name: str | None = None,
        enable_memory_snapshot: bool = False,
        block_network: bool = False,
        # Older Modal names, mapped onto the current ones.
        keep_warm: int | None = None,
        concurrency_limit: int | None = None,
        container_idle_timeout: float | None = None,
        allow_concurrent_inputs: int | None = None,
        _decorates_class: bool = False,  # set by App.cls, which takes the same options
        # Modal's other parameters: refused when they would change anything (client/modal_names.py).
        **modal_options: Any,
    ) -> Callable[[Any], Any]:
        """Register the decorated function with this app."""
        decorator = "@app.cls()" if _decorates_class else "@app.function()"
        if _warn_parentheses_missing is not None:
            raise InvalidError(f"use {decorator} with parentheses")
        modal_names.check_options(
            decorator, modal_options, modal_names.FUNCTION_OPTIONS, modal_names.IGNORED_FUNCTION_OPTIONS
        )

        def wrap(f: Callable[..., Any] | PartialFunction) -> Any:
            partial = f if isinstance(f, PartialFunction) else PartialFunction(raw_f=f)
            if inspect.isclass(partial.raw_f) != _decorates_class:
                raise InvalidError(
                    f"{decorator} decorates a class"
                    if _decorates_class
                    else f"@app.function() decorates a function; use @app.cls() for the class {partial.raw_f.__name__}"
                )
            fn_name = name or partial.raw_f.__name__
            per_input = _timeout("timeout", timeout, 300.0)
            cpu_request, cpu_limit = cpu_pair(cpu, decorator.removesuffix("()")) if cpu is not None else (0.0, 0.0)
            memory_request, memory_limit = (
                memory_pair(memory, decorator.removesuffix("()")) if memory is not None else (0, 0)
            )
            max_inputs = partial.max_inputs or allow_concurrent_inputs or 1
            if partial.batch is not None and max_inputs > 1:  # allow_concurrent_inputs=, Modal's old @concurrent
                raise InvalidError(
                    f"@modal.batched cannot be combined with allow_concurrent_inputs (on `{fn_name}`): a batched "
                    "function's container takes max_batch_size inputs at once already. Remove allow_concurrent_inputs."
                )
            options = FunctionOptions(
                image=image or self.image,
                gpu=_gpu_string(gpu),
                secrets=self.secrets + tuple(secrets),
                min_containers=_at_least(0, "min_containers", min_containers, keep_warm, 0),
                max_containers=_at_least(0, "max_containers", max_containers, concurrency_limit, 0),
                buffer_containers=_at_least(0, "buffer_containers", buffer_containers, None, 0),
                scaledown_window=_positive("scaledown_window", scaledown_window, container_idle_timeout, 60.0),
                timeout=per_input,
                startup_timeout=_timeout("startup_timeout", startup_timeout, per_input),
                retries=parse_retries(retries, f"{decorator.removesuffix('()')} {fn_name}"),
                max_inputs=max_inputs,
                target_inputs=partial.target_inputs or 0,
                cpu=cpu_request,
                cpu_limit=cpu_limit,
                memory_mib=memory_request,
                memory_limit_mib=memory_limit,
                batch_max_size=partial.batch.max_batch_size if partial.batch else 0,
                batch_wait_ms=partial.batch.wait_ms if partial.batch else 0,
                enable_memory_snapshot=bool(enable_memory_snapshot),
                block_network=bool(block_network),
            )
            if fn_name in self.registered_functions or fn_name in self.registered_classes:
                raise InvalidError(f"app {self.name!r} already has a function named {fn_name!r}")
            if _decorates_class:
                assert isinstance(partial.raw_f, type)
                cls = Cls.of_app(self, fn_name, partial.raw_f, options)
                self.registered_classes[fn_name] = cls
                return cls
            function = Function(self, fn_name, partial.raw_f, options, partial.web)
            self.registered_functions[fn_name] = function
            return function

        return wrap

    def cls(self, _warn_parentheses_missing: Any = None, **options: Any) -> Callable[[type], Cls]:
        """Register the decorated class with this app: every option of @app.function(), one pool of
        containers for all its methods, one instance of the class in each container."""
        return self.function(_warn_parentheses_missing, _decorates_class=True, **options)

    def local_entrypoint(
        self, _warn_parentheses_missing: Any = None, *, name: str | None = None
    ) -> Callable[[Callable[..., Any]], LocalEntrypoint]:
        """Register the decorated function as an entrypoint that `stoker run` calls on the local
        machine, with its parameters as command-line options, while the app runs."""
        if _warn_parentheses_missing is not None:
            raise InvalidError("use @app.local_entrypoint() with parentheses")

        def wrap(f: Callable[..., Any]) -> LocalEntrypoint:
            entry_name = name or f.__name__
            if entry_name in self.registered_entrypoints:
                raise InvalidError(f"app {self.name!r} already has a local entrypoint named {entry_name!r}")
            entrypoint = LocalEntrypoint(self, entry_name, f)
            self.registered_entrypoints[entry_name] = entrypoint
            return entrypoint

        return wrap


def _positive(what: str, value: float | None, old: float | None, default: float) -> float:
    chosen = value if value is not None else old if old is not None else default
    if not chosen > 0:
        raise InvalidError(f"{what} must be a positive number of seconds, got {chosen}")
    return float(chosen)


def _timeout(what: str, value: float | None, default: float) -> float:
    chosen = default if value is None else value
    if isinstance(chosen, bool) or not isinstance(chosen, int | float) or not 1 <= chosen <= MAX_TIMEOUT:
        raise InvalidError(f"{what} must be between 1 second and 24 hours ({MAX_TIMEOUT:g} s), got {chosen!r}")
    return float(chosen)


def _at_least(minimum: int, what: str, value: int | None, old: int | None, default: int) -> int:
    chosen = value if value is not None else old if old is not None else default
    if chosen < minimum:
        raise InvalidError(f"{what} must be at least {minimum}, got {chosen}")
    return chosen
