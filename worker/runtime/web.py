"""Turn each kind of web function into one ASGI callable."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from client.exceptions import InvalidError
from client.function import Function
from worker.runtime.endpoint import Endpoint
from worker.runtime.threads import request_threads

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def build_asgi_app(function: Function) -> ASGIApp:
    """The ASGI app that serves the web function, built once per container."""
    if function.web is None:
        raise InvalidError(f"{function.name} is not a web function")
    return build_endpoint_app(Endpoint(function.name, function.web, function.raw_f, function.options.max_inputs))


def build_endpoint_app(function: Endpoint) -> ASGIApp:
    """The ASGI app that serves one web function or web method."""
    web = function.web
    if web.kind == "fastapi_endpoint":
        return _fastapi_endpoint(function)
    if web.kind == "asgi_app":
        app = function.f()
        if inspect.isawaitable(app):
            raise InvalidError(f"@asgi_app function {function.name} must return an app, not a coroutine")
        if not callable(app):
            raise InvalidError(f"@asgi_app function {function.name} returned {app!r}, not an ASGI app")
        return app  # type: ignore[no-any-return]
    if web.kind == "wsgi_app":
        from a2wsgi import WSGIMiddleware

        wsgi = function.f()
        if not callable(wsgi):
            raise InvalidError(f"@wsgi_app function {function.name} returned {wsgi!r}, not a WSGI app")
        # One thread per concurrent input (a2wsgi's default is 10, below @concurrent's caps).
        threads = max(1, function.max_inputs)
        return _no_websocket(WSGIMiddleware(wsgi, workers=threads))  # type: ignore[arg-type]
    if web.kind == "web_server":
        from worker.runtime.web_server import start_web_server

        return start_web_server(function)
    raise InvalidError(f"web function kind {web.kind!r} is not supported by this runtime")


def _fastapi_endpoint(function: Endpoint) -> ASGIApp:
    from fastapi import FastAPI

    web = function.web
    docs = web.docs
    app = FastAPI(
        title=function.name,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.add_api_route("/", _tracked(function.f), methods=[web.method])
    return app


def _tracked(f: Callable[..., Any]) -> Callable[..., Any]:
    """A sync endpoint as an async one that runs it in the request's threads (FastAPI would run it
    in its own thread pool): past its timeout, the request learns that it could not be stopped.
    FastAPI reads the parameters through `__wrapped__`."""
    if inspect.iscoroutinefunction(f) or not inspect.isroutine(f):
        return f

    @functools.wraps(f)
    async def endpoint(*args: Any, **kwargs: Any) -> Any:
        threads = request_threads.get()
        call = functools.partial(f, *args, **kwargs)
        return await (threads.run(call) if threads is not None else asyncio.to_thread(call))

    return endpoint


def _no_websocket(app: ASGIApp) -> ASGIApp:
    """WSGI cannot speak WebSocket: close such connections cleanly instead of erroring."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1003, "reason": "WSGI apps do not accept WebSockets"})
            return
        await app(scope, receive, send)

    return wrapped
