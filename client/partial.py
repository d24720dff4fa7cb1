"""The web and concurrency decorators that sit under `@app.function()`.

Each returns a `PartialFunction`: the user's function plus what the decorator said about it.
`App.function` turns it into a `Function`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

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

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.raw_f(*args, **kwargs)


def _merge(f: Callable[..., Any] | PartialFunction, **changes: Any) -> PartialFunction:
    base = f if isinstance(f, PartialFunction) else PartialFunction(raw_f=f)
    if "web" in changes and base.web is not None:
        raise InvalidError(f"{base.raw_f.__name__} has two web decorators; use one")
    return replace(base, **changes)


def _web_decorator(config: WebConfig) -> Callable[[Any], PartialFunction]:
    def wrap(f: Callable[..., Any] | PartialFunction) -> PartialFunction:
        if not callable(f):
            raise InvalidError(f"@{config.kind} must decorate a function")
        return _merge(f, web=config)

    return wrap


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
        return _merge(f, max_inputs=max_inputs, target_inputs=target_inputs)

    return wrap
