"""A class instance's `modal.parameter()` values on the wire (pb.Parameters), as the three ends
see them: the SDK encodes what the caller gave (`encode`), the scheduler checks them against the
class's declarations and keeps only those that differ from their defaults, so that equal
instances name the same pool of containers (`normalize`), and the container reads them back with
the defaults filled in (`decode`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protos import stoker_pb2 as pb

_FIELD = {str: "string_value", int: "int_value", bool: "bool_value", bytes: "bytes_value"}
TYPE_NAMES = {str: "str", int: "int", bool: "bool", bytes: "bytes"}
_TYPE_FIELD = {TYPE_NAMES[t]: f for t, f in _FIELD.items()}


class ParameterError(ValueError):
    """The values do not fit the class's parameters; the message says how."""


def to_value(name: str, value: Any) -> pb.ParameterValue:
    field = _FIELD.get(type(value))
    if field is None:
        raise ParameterError(f"parameter {name}={value!r}: only str, int, bool and bytes values are supported")
    result = pb.ParameterValue(name=name)
    setattr(result, field, value)
    return result


def from_value(value: pb.ParameterValue) -> Any:
    field = value.WhichOneof("value")
    return getattr(value, field) if field is not None else None


def encode(values: Mapping[str, Any]) -> bytes:
    """The caller's keyword arguments, as they are (the scheduler checks them)."""
    if not values:
        return b""
    message = pb.Parameters(values=[to_value(k, values[k]) for k in sorted(values)])
    return message.SerializeToString(deterministic=True)


def normalize(class_name: str, declared: list[pb.ParameterSpec], data: bytes) -> bytes:
    """The values in canonical form (sorted, defaults left out); ParameterError when a name is
    unknown, a type is wrong or a parameter without a default is missing."""
    given = {v.name: v for v in pb.Parameters.FromString(data).values} if data else {}
    known = {p.name: p for p in declared}
    unknown = sorted(set(given) - set(known))
    if unknown:
        have = ", ".join(sorted(known)) or "none"
        raise ParameterError(f"{class_name} has no parameter {', '.join(unknown)} (its parameters: {have})")
    kept = []
    for spec in sorted(declared, key=lambda p: p.name):
        value = given.get(spec.name)
        if value is None:
            if not spec.HasField("default"):
                raise ParameterError(f"{class_name}() needs a value for the parameter {spec.name} ({spec.type})")
            continue
        if value.WhichOneof("value") != _TYPE_FIELD[spec.type]:
            raise ParameterError(
                f"{class_name}: parameter {spec.name} takes {spec.type} values, got {from_value(value)!r}"
            )
        if spec.HasField("default") and from_value(spec.default) == from_value(value):
            continue
        kept.append(value)
    return pb.Parameters(values=kept).SerializeToString(deterministic=True) if kept else b""


def decode(declared: list[pb.ParameterSpec], data: bytes) -> dict[str, Any]:
    """Every parameter's value for one instance: the given ones, else the defaults."""
    values = {p.name: from_value(p.default) for p in declared if p.HasField("default")}
    if data:
        values.update({v.name: from_value(v) for v in pb.Parameters.FromString(data).values})
    return values
