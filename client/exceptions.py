"""The SDK's exceptions, and the one place where gRPC status codes become them."""

from __future__ import annotations

import grpc


class Error(Exception):
    """Base class of every error stoker raises to its users."""


class InvalidError(Error):
    """The request was malformed: a bad app definition, argument or name."""


class NotFoundError(Error):
    """The app, function or secret does not exist."""


class AlreadyExistsError(Error):
    """The name or label is taken."""


class AuthError(Error):
    """Missing or wrong credentials."""


class ConnectionError(Error):
    """The cluster could not be reached."""


class ExecutionError(Error):
    """The remote side failed while doing what was asked."""


class TimeoutError(Error):  # Modal's name (modal.exception.TimeoutError), shadowing the builtin here
    """Base class of stoker's timeouts, as of Modal's."""


class FunctionTimeoutError(TimeoutError):
    """An input ran past its function's `timeout=`."""


_BY_CODE: dict[grpc.StatusCode, type[Error]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidError,
    grpc.StatusCode.FAILED_PRECONDITION: InvalidError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.UNAUTHENTICATED: AuthError,
    grpc.StatusCode.PERMISSION_DENIED: AuthError,
    grpc.StatusCode.UNAVAILABLE: ConnectionError,
    grpc.StatusCode.DEADLINE_EXCEEDED: ConnectionError,
}


def from_rpc_error(exc: grpc.RpcError) -> Error:
    """Map a gRPC error to the SDK exception a user can act on."""
    # grpc.aio's errors (serve's stream) carry a status like sync ones but are no grpc.Call.
    has_status = isinstance(exc, grpc.Call | grpc.aio.AioRpcError)
    code = exc.code() if has_status else grpc.StatusCode.UNKNOWN
    details = exc.details() if has_status else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE:
        details = f"the stoker scheduler cannot be reached ({details}); is the cluster running (`stoker up`)?"
    return _BY_CODE.get(code, ExecutionError)(details or str(code))


class RemoteError(ExecutionError):
    """A function call raised an exception that could not be rebuilt here (it did not pickle, or
    its class does not import in this process): its type, message and traceback, as text."""

    def __init__(self, type_name: str, message: str, traceback: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.remote_message = message
        self.remote_traceback = traceback

    def __str__(self) -> str:
        head = super().__str__()
        return f"{head}\n\nRemote traceback:\n{self.remote_traceback}" if self.remote_traceback else head


class InputCancellation(BaseException):
    """The input was cancelled (`FunctionCall.cancel()`): `.get()` of a cancelled call raises it.
    A BaseException, as Modal's is, so that an `except Exception` meant for retries does not
    swallow it."""
