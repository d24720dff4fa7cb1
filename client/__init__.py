"""stoker's SDK. Inside stoker's CLI and containers, `import modal` resolves to this package."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

# First: gRPC reads its settings when it is imported, and the modules below import it.
import client._grpc_env  # noqa: F401
from client import localhost, modal_names
from client.app import App
from client.batching import batched
from client.calls import FunctionCall
from client.class_members import enter, exit, method, parameter
from client.cls import Cls
from client.exceptions import (
    AlreadyExistsError,
    AuthError,
    ConnectionError,
    Error,
    ExecutionError,
    InvalidError,
    NotFoundError,
    RemoteError,
)
from client.execution_context import current_function_call_id, current_input_id
from client.function import Function
from client.image import Image
from client.partial import (
    asgi_app,
    concurrent,
    fastapi_endpoint,
    web_endpoint,
    web_server,
    wsgi_app,
)
from client.retries import Retries
from client.secret import Secret

# Every process that imports the SDK (user programs, containers, the CLI) resolves the
# `*.localhost` URLs that get_web_url() hands out, whatever its HTTP client (client/localhost.py).
localhost.install()

__all__ = [
    "AlreadyExistsError",
    "App",
    "AuthError",
    "Cls",
    "ConnectionError",
    "Error",
    "ExecutionError",
    "Function",
    "FunctionCall",
    "Image",
    "InvalidError",
    "NotFoundError",
    "RemoteError",
    "Retries",
    "Secret",
    "asgi_app",
    "batched",
    "concurrent",
    "current_function_call_id",
    "current_input_id",
    "enter",
    "exit",
    "fastapi_endpoint",
    "method",
    "parameter",
    "web_endpoint",
    "web_server",
    "wsgi_app",
]


if not TYPE_CHECKING:  # at runtime only, so that mypy still flags names the SDK lacks

    def __getattr__(name: str) -> NoReturn:
        """A Modal name stoker lacks: "not supported yet" (PEP 562: only missing names get here)."""
        modal_names.missing_module_attribute("modal", name, modal_names.TOP_LEVEL)
