"""How function-call arguments, results and exceptions travel: cloudpickle, in the proto's
CallRequest / CallOutput / CallError.

Used by the SDK (the caller) and by the container runtime (the callee); the scheduler relays the
bytes without unpickling them.
"""

from __future__ import annotations

import traceback
from typing import Any

import cloudpickle

from client.exceptions import InvalidError, RemoteError
from protos import stoker_pb2 as pb

REMOTE_TRACEBACK_NOTE = "Traceback of the function call, where it raised:\n"
# The most one pickled argument set, item or result may weigh: under the 64 MiB gRPC message
# limit of the container's stream, which one oversized frame would break for every call on it.
MAX_PAYLOAD = 60 * 1024 * 1024


class PayloadTooLarge(ValueError):
    """A pickled value over MAX_PAYLOAD."""


def _bounded(data: bytes, what: str) -> bytes:
    if len(data) > MAX_PAYLOAD:
        raise PayloadTooLarge(
            f"{what} pickles to {len(data) / 2**20:.1f} MiB; at most {MAX_PAYLOAD // 2**20} MiB may travel in one "
            "call: pass a path or a URL to large data instead"
        )
    return data


def encode_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    try:
        data = bytes(cloudpickle.dumps((tuple(args), dict(kwargs))))
    except Exception as exc:
        raise InvalidError(f"the call's arguments cannot be pickled: {type(exc).__name__}: {exc}") from exc
    try:
        return _bounded(data, "the call's arguments")
    except PayloadTooLarge as exc:
        raise InvalidError(str(exc)) from None


def decode_args(data: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
    args, kwargs = cloudpickle.loads(data) if data else ((), {})
    if not isinstance(args, tuple) or not isinstance(kwargs, dict):
        raise InvalidError("the call's arguments are not an (args tuple, kwargs dict) pair")
    return args, kwargs


def encode_value(value: Any, what: str = "the value") -> bytes:
    """The value pickled; PayloadTooLarge past MAX_PAYLOAD."""
    return _bounded(bytes(cloudpickle.dumps(value)), what)


def decode_value(data: bytes) -> Any:
    return cloudpickle.loads(data)


# Frames of the machinery that ran the function (the container runtime, asyncio's threads): left
# out of the traceback the caller sees, which starts at the user's own code.
_PLUMBING = ("/worker/runtime/", "/asyncio/", "/concurrent/futures/")


def _user_traceback(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and any(p in tb.tb_frame.f_code.co_filename for p in _PLUMBING):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def error_to_proto(exc: BaseException) -> pb.CallError:
    """The exception as the caller will get it: pickled when it can be, always with its text."""
    kind = type(exc)
    try:
        pickled = bytes(cloudpickle.dumps(exc))
        cloudpickle.loads(pickled)  # some exceptions pickle but do not rebuild (required __init__ args)
    except Exception:
        pickled = b""
    return pb.CallError(
        type=f"{kind.__module__}.{kind.__qualname__}",
        message=str(exc),
        traceback=_user_traceback(exc),
        exception=pickled,
    )


def error_from_proto(error: pb.CallError) -> BaseException:
    """The exception to raise in the caller, carrying the callee's traceback as a note; a
    RemoteError with type, message and traceback when the exception itself cannot be rebuilt."""
    if error.exception:
        try:
            exc = cloudpickle.loads(error.exception)
        except Exception:
            exc = None
        if isinstance(exc, BaseException):
            if error.traceback:
                exc.add_note(REMOTE_TRACEBACK_NOTE + error.traceback.rstrip())
            return exc
    return RemoteError(error.type, error.message, error.traceback)


def output_value(output: pb.CallOutput) -> Any:
    """The value a finished call's output carries, raising the callee's exception if it failed."""
    kind = output.WhichOneof("kind")
    if kind == "error":
        raise error_from_proto(output.error)
    if kind == "result":
        return decode_value(output.result)
    if kind == "item":
        return decode_value(output.item)
    raise RemoteError("stoker.EmptyOutput", "the call ended without a result", "")
