"""The web and concurrency decorators that sit under `@app.function()`.

Each returns a `PartialFunction`: the user's function plus what the decorator said about it.
`App.function` turns it into a `Function`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from client import batching
from client.batching import BatchConfig
from client.exceptions import InvalidError

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class WebConfig:
    kind: str  # fastapi_endpoint | asgi_app | wsgi_app | web_server
    method: str = "GET"
    label: str = ""
    custom_domains: tuple[str, ...] = ()
    docs: bool = False
    requires_proxy_auth: bool = False
    port: int = 0
    startup_timeout: float = 5.0


@dataclass(frozen=True)
class PartialFunction:
    raw_f: Callable[..., Any]
    web: WebConfig | None = None
    max_inputs: int | None = None
    target_inputs: int | None = None
    batch: BatchConfig | None = None  # @modal.batched (client/batching.py)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.raw_f(*args, **kwargs)


def _merge(f: Callable[..., Any] | PartialFunction, decorator: str, **changes: Any) -> PartialFunction:
    # Imported here: client.function imports this module (for WebConfig).
    from client.function import Function

    if isinstance(f, Function):
        # Above @app.function the decorator would come too late: the function is registered
        # already, and would deploy without what the decorator says (no URL, one input at a time).
        raise InvalidError(
            f"Cannot stack `@modal.{decorator}` on top of `@app.function`. Hint: swap the order of the "
            f"decorators: `@app.function()` goes first (on top), `@modal.{decorator}` under it."
        )
    base = f if isinstance(f, PartialFunction) else PartialFunction(raw_f=f)
    if "web" in changes and base.web is not None:
        raise InvalidError(f"{base.raw_f.__name__} has two web decorators; use one")
    merged = replace(base, **changes)
    batching.check(merged)  # whichever of the decorators came last
    return merged


merge = _merge  # for client/batching.py's decorator


# The web decorators whose function is called once, with no arguments, to make an app or start a
# server; requests reach that app or server, never the function's parameters.
_FACTORIES = frozenset({"asgi_app", "wsgi_app", "web_server"})


def _web_decorator(config: WebConfig) -> Callable[[Any], PartialFunction]:
    def wrap(f: Callable[..., Any] | PartialFunction) -> PartialFunction:
        if not callable(f):
            raise InvalidError(f"@{config.kind} must decorate a function")
        merged = _merge(f, config.kind, web=config)
        _check_web_function(config.kind, merged.raw_f)
        return merged

    return wrap


def _check_web_function(kind: str, raw_f: Callable[..., Any]) -> None:
    name = getattr(raw_f, "__name__", repr(raw_f))
    if inspect.isgeneratorfunction(raw_f) or inspect.isasyncgenfunction(raw_f):
        raise InvalidError(
            f"Webhooks cannot be generators: `{name}` under `@modal.{kind}` yields. For a streaming "
            "response, return `fastapi.responses.StreamingResponse(generator())` instead "
            "(https://modal.com/docs/guide/streaming-endpoints)."
        )
    if kind in _FACTORIES and any(p.name != "self" for p in inspect.signature(raw_f).parameters.values()):
        what = "starts the server" if kind == "web_server" else "returns the app"
        raise InvalidError(
            f"Functions decorated by `@modal.{kind}` can't have parameters: `{name}` is called once, with "
            f"no arguments, and {what}. Remove its parameters and read each request's data in the app's "
            "routes (or use `@modal.fastapi_endpoint`, whose parameters are the query parameters)."
        )


def fastapi_endpoint(
    _warn_parentheses_missing: Any = None,
    *,
    method: str = "GET",
    label: str | None = None,
    custom_domains: list[str] | None = None,
    docs: bool = False,
    requires_proxy_auth: bool = False,
) -> Callable[[Any], PartialFunction]:
    """Serve the function as a FastAPI endpoint at `/` with the given HTTP method."""
    if _warn_parentheses_missing is not None:
        raise InvalidError("use @fastapi_endpoint() with parentheses")
    if method.upper() not in HTTP_METHODS:
        raise InvalidError(f"method={method!r} is not an HTTP method; use one of {sorted(HTTP_METHODS)}")
    return _web_decorator(
        WebConfig(
            kind="fastapi_endpoint",
            method=method.upper(),
            label=label or "",
            custom_domains=tuple(custom_domains or ()),
            docs=docs,
            requires_proxy_auth=requires_proxy_auth,
        )
    )


web_endpoint = fastapi_endpoint  # Modal's older name


def _app_decorator(kind: str, what: str) -> Callable[..., Callable[[Any], PartialFunction]]:
    def decorator(
        _warn_parentheses_missing: Any = None,
        *,
        label: str | None = None,
        custom_domains: list[str] | None = None,
        requires_proxy_auth: bool = False,
    ) -> Callable[[Any], PartialFunction]:
        if _warn_parentheses_missing is not None:
            raise InvalidError(f"use @{kind}() with parentheses")
        return _web_decorator(
            WebConfig(
                kind=kind,
                label=label or "",
                custom_domains=tuple(custom_domains or ()),
                requires_proxy_auth=requires_proxy_auth,
            )
        )

    decorator.__name__ = kind
    decorator.__doc__ = f"Serve the {what} the function returns."
    return decorator


asgi_app = _app_decorator("asgi_app", "ASGI app")
wsgi_app = _app_decorator("wsgi_app", "WSGI app (Flask, Django), under an ASGI adapter,")


def web_server(
    port: int,
    *,
    startup_timeout: float = 5.0,
    label: str | None = None,
    custom_domains: list[str] | None = None,
    requires_proxy_auth: bool = False,
) -> Callable[[Any], PartialFunction]:
    """Proxy to the server that the function starts on `port`."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidError(f"web_server port must be an integer in 1..65535, got {port!r}")
    return _web_decorator(
        WebConfig(
            kind="web_server",
            port=port,
            startup_timeout=startup_timeout,
            label=label or "",
            custom_domains=tuple(custom_domains or ()),
            requires_proxy_auth=requires_proxy_auth,
        )
    )


def concurrent(
    _warn_parentheses_missing: Any = None,
    *,
    max_inputs: int,
    target_inputs: int | None = None,
) -> Callable[[Any], PartialFunction]:
    """Let one container run up to `max_inputs` inputs at once."""
    if _warn_parentheses_missing is not None:
        raise InvalidError("use @concurrent(max_inputs=...) with parentheses")
    if max_inputs < 1:
        raise InvalidError(f"max_inputs must be at least 1, got {max_inputs}")
    if target_inputs is not None and not 1 <= target_inputs <= max_inputs:
        raise InvalidError(f"target_inputs must be between 1 and max_inputs ({max_inputs})")

    def wrap(f: Callable[..., Any] | PartialFunction) -> PartialFunction:
        return _merge(f, "concurrent", max_inputs=max_inputs, target_inputs=target_inputs)

    return wrap
