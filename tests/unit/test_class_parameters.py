"""The wire form of class parameters: equal instances name one pool, bad values say what is wrong."""

from __future__ import annotations

import pytest

from protos import parameters as wire
from protos import stoker_pb2 as pb

DECLARED = [
    pb.ParameterSpec(name="size", type="str", default=pb.ParameterValue(name="size", string_value="small")),
    pb.ParameterSpec(name="scale", type="int", default=pb.ParameterValue(name="scale", int_value=1)),
    pb.ParameterSpec(name="fast", type="bool"),
]


def test_defaults_and_order_do_not_change_the_pool() -> None:
    a = wire.normalize("M", DECLARED, wire.encode({"fast": True, "size": "small"}))
    b = wire.normalize("M", DECLARED, wire.encode({"scale": 1, "fast": True}))
    assert a == b
    assert wire.normalize("M", DECLARED, wire.encode({"fast": True, "size": "large"})) != a
    assert wire.decode(DECLARED, a) == {"size": "small", "scale": 1, "fast": True}


def test_bool_is_not_an_int() -> None:
    with pytest.raises(wire.ParameterError, match="parameter scale takes int values, got True"):
        wire.normalize("M", DECLARED, wire.encode({"fast": True, "scale": True}))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"fast": True, "colour": "red"}, "M has no parameter colour"),
        ({}, r"M\(\) needs a value for the parameter fast \(bool\)"),
        ({"fast": True, "size": b"x"}, "parameter size takes str values"),
    ],
)
def test_bad_values_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(wire.ParameterError, match=message):
        wire.normalize("M", DECLARED, wire.encode(values))


def test_unsupported_types_are_refused_at_the_caller() -> None:
    with pytest.raises(wire.ParameterError, match="only str, int, bool and bytes"):
        wire.encode({"size": 1.5})
