"""What `stoker run FILE::name` runs, found by Modal's rules: the runnables of a module are its
local entrypoints and functions, each known by its module-level name and as `app_var.name`; a
name picks the ones it matches (exactly, or as a prefix such as an App variable), and of those
the single one of the highest priority wins: an entrypoint defined in the module, then a
function of the module, then an entrypoint of one of its Apps, then a function of one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from client.app import App
from client.entrypoint import LocalEntrypoint
from client.exceptions import InvalidError
from client.function import Function

Runnable = Function | LocalEntrypoint

# Lower runs first when a reference matches several.
MODULE_ENTRYPOINT, MODULE_FUNCTION, APP_ENTRYPOINT, APP_FUNCTION = range(4)


@dataclass
class Command:
    names: list[str]  # the module-level name first, when there is one
    runnable: Runnable
    priority: int

    @property
    def is_web(self) -> bool:
        return isinstance(self.runnable, Function) and self.runnable.web is not None


def list_commands(members: Mapping[str, Any]) -> list[Command]:
    commands: dict[int, Command] = {}  # by id(): the same object may be reached under several names

    def add(runnable: Runnable, name: str, priority: int, first: bool = False) -> None:
        command = commands.setdefault(id(runnable), Command([], runnable, priority))
        command.names.insert(0, name) if first else command.names.append(name)
        command.priority = min(command.priority, priority)

    for variable, app in members.items():
        if isinstance(app, App):
            for name, entrypoint in app.registered_entrypoints.items():
                add(entrypoint, f"{variable}.{name}", APP_ENTRYPOINT)
            for name, function in app.registered_functions.items():
                add(function, f"{variable}.{name}", APP_FUNCTION)
    for name, member in members.items():
        if isinstance(member, LocalEntrypoint):
            add(member, name, MODULE_ENTRYPOINT, first=True)
        elif isinstance(member, Function):
            add(member, name, MODULE_FUNCTION, first=True)
    return list(commands.values())


def matching(commands: list[Command], object_path: str) -> list[Command]:
    """The commands a reference names: all of them for none, else by exact name or prefix."""
    if not object_path:
        return list(commands)
    return [c for c in commands if object_path in c.names or any(n.startswith(f"{object_path}.") for n in c.names)]


def choose(members: Mapping[str, Any], object_path: str, where: str) -> Runnable:
    """The one runnable `object_path` names in a module; InvalidError listing the choices when
    it names none or several of equal priority."""
    commands = list_commands(members)
    named = matching(commands, object_path)
    if named and all(c.is_web for c in named):
        raise InvalidError(f"{object_path or where} is a web function: serve it with `stoker serve` instead")
    usable = [c for c in named if not c.is_web]
    if usable:
        best = min(c.priority for c in usable)
        top = [c for c in usable if c.priority == best]
        if len(top) == 1:
            return _runnable(top[0].runnable)
    choices = [" / ".join(c.names) for c in commands if not c.is_web]
    listed = ("; it has:\n  " + "\n  ".join(choices)) if choices else "; it has no functions or local entrypoints"
    if object_path and not named:
        head = f"{where} has no function or local entrypoint {object_path!r}"
    else:
        head = f"name the function or local entrypoint to run, e.g. `stoker run {where}::name`"
    raise InvalidError(head + listed)


def _runnable(runnable: Runnable) -> Runnable:
    if isinstance(runnable, Function) and runnable.is_generator:
        raise InvalidError("`stoker run` is not supported for generator functions")
    return runnable
