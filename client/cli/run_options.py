"""The command-line options of what `stoker run` runs, from its parameters, as Modal makes them:
each parameter `x_y` becomes `--x-y`, typed by its annotation (str, int, float; a bool is a
`--flag/--no-flag` pair; a `Literal` of strings a choice; none: the text as given), required
unless it has a default."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

import click

from client.exceptions import InvalidError

_PARSERS: dict[Any, Any] = {str: str, int: int, float: float, bool: bool, Any: str}


def _parser(hint: Any, name: str) -> Any:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        hint = args[0] if args[1] is type(None) else args[1]  # Optional[T]: a T, or the default None
    if typing.get_origin(hint) is typing.Literal and all(isinstance(v, str) for v in typing.get_args(hint)):
        return click.Choice(list(typing.get_args(hint)))
    parser = _PARSERS.get(hint)
    if parser is None:
        raise InvalidError(
            f"parameter {name!r} has an annotation `stoker run` cannot parse from the command line: {hint!r} "
            "(supported: str, int, float, bool, Literal of strings, and their Optional forms)"
        )
    return parser


def options(f: Callable[..., Any]) -> list[click.Option]:
    """One option per parameter of `f`; InvalidError for a parameter that cannot be one."""
    try:
        hints = typing.get_type_hints(f)
    except Exception as exc:  # an annotation this interpreter cannot evaluate
        raise InvalidError(f"the annotations of {f.__name__} cannot be evaluated: {exc}") from None
    result = []
    for param in inspect.signature(f).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise InvalidError(f"{f.__name__}: *args and **kwargs parameters are not supported yet by `stoker run`")
        parser = _parser(hints.get(param.name, Any), param.name)
        flag = "--" + param.name.replace("_", "-")
        decls = [f"{flag}/--no-{flag[2:]}" if parser is bool else flag, param.name]
        if param.default is inspect.Parameter.empty:
            result.append(click.Option(decls, type=parser, required=True))
        else:
            result.append(click.Option(decls, type=parser, default=param.default, show_default=True))
    return result
