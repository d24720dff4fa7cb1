"""The call codec: arguments, values and exceptions through cloudpickle and the proto."""

from __future__ import annotations

import pytest

from client.call_codec import (
    MAX_PAYLOAD,
    REMOTE_TRACEBACK_NOTE,
    PayloadTooLarge,
    decode_args,
    encode_args,
    encode_value,
    error_from_proto,
    error_to_proto,
    output_value,
)
from client.exceptions import InvalidError, RemoteError
from protos import stoker_pb2 as pb


class NeedsTwoArgs(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickles, but does not rebuild from its args
        super().__init__(f"{a}/{b}")


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_args_round_trip_including_closures() -> None:
    offset = 5
    args, kwargs = decode_args(encode_args((1, lambda x: x + offset), {"k": [1, 2]}))
    assert args[0] == 1 and args[1](1) == 6
    assert kwargs == {"k": [1, 2]}


def test_empty_args_decode_to_nothing() -> None:
    assert decode_args(b"") == ((), {})


def test_args_that_are_not_a_pair_are_refused() -> None:
    with pytest.raises(InvalidError, match="not an"):
        decode_args(encode_value([1, 2]))


def test_unpicklable_args_raise_a_clear_error() -> None:
    import threading

    with pytest.raises(InvalidError, match="cannot be pickled"):
        encode_args((threading.Lock(),), {})


def test_exception_round_trips_with_its_traceback_as_a_note() -> None:
    error = error_to_proto(_raised(ValueError("bad input")))
    assert error.type == "builtins.ValueError"
    assert error.message == "bad input"
    assert "raise exc" in error.traceback
    rebuilt = error_from_proto(error)
    assert isinstance(rebuilt, ValueError) and str(rebuilt) == "bad input"
    assert rebuilt.__notes__[0].startswith(REMOTE_TRACEBACK_NOTE)
    assert "ValueError: bad input" in rebuilt.__notes__[0]


def test_exception_that_does_not_rebuild_becomes_remote_error() -> None:
    error = error_to_proto(_raised(NeedsTwoArgs(1, 2)))
    assert error.exception == b""
    rebuilt = error_from_proto(error)
    assert isinstance(rebuilt, RemoteError)
    assert rebuilt.type_name.endswith("NeedsTwoArgs")
    assert rebuilt.remote_message == "1/2"
    assert "Remote traceback" in str(rebuilt) and "NeedsTwoArgs: 1/2" in str(rebuilt)


def test_garbage_pickle_becomes_remote_error() -> None:
    rebuilt = error_from_proto(pb.CallError(type="x.Y", message="m", traceback="tb", exception=b"not a pickle"))
    assert isinstance(rebuilt, RemoteError) and rebuilt.remote_traceback == "tb"


def test_output_value_by_kind() -> None:
    assert output_value(pb.CallOutput(result=encode_value({"a": 1}))) == {"a": 1}
    assert output_value(pb.CallOutput(item=encode_value(3))) == 3
    with pytest.raises(KeyError):
        output_value(pb.CallOutput(error=error_to_proto(_raised(KeyError("k")))))
    with pytest.raises(RemoteError, match="without a result"):
        output_value(pb.CallOutput())


def test_payloads_over_the_limit_are_refused_with_the_size() -> None:
    big = b"x" * (MAX_PAYLOAD + 1)
    with pytest.raises(InvalidError, match=r"the call's arguments pickles to 60\.0 MiB; at most 60 MiB"):
        encode_args((big,), {})
    with pytest.raises(PayloadTooLarge, match="the function's return value pickles to"):
        encode_value(big, "the function's return value")
