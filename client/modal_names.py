"""Modal's names that stoker does not have yet, and Modal's module aliases (`modal.functions`, ...).

An app written for Modal must never fail with a bare AttributeError, nor run believing that a
feature works when stoker ignores it: a name that Modal 1.x has and stoker lacks raises
`InvalidError("stoker does not support modal.X yet")`. The lists are of names stoker *lacks*; they
are consulted only from `__getattr__`, which Python calls only for names that are missing, so an
attribute stoker adds later is never shadowed (and tests/unit/test_modal_names.py fails until its
name leaves the list, which keeps the lists and README honest).

The lists were taken from modal-client 1.x: `modal/__init__.py`'s `__all__`, the public members of
`App`, `Function`, `FunctionCall`, `Image` and `Secret`, and the public names of `modal.exception`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any, NoReturn

from client.exceptions import InvalidError


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# modal/__init__.py's __all__, less what stoker's package has.
TOP_LEVEL = _names(
    """
    Client CloudBucketMount Cron Dict Environment FilePatternMatcher NetworkFileSystem Period
    Probe Proxy Queue Sandbox SandboxSnapshot SchedulerPlacement Server Tunnel Volume Workspace
    billing enable_output forward interact is_local types
    """
)

# Modal's names that are gone from Modal too, with the fix Modal gives (an AttributeError there as here).
RENAMED: Mapping[str, str] = {"Stub": "Use `modal.App` instead. This is a simple name change."}

# Public members of Modal's classes that stoker's classes lack, by stoker class name.
_OBJECT = "client deps get_dashboard_url hydrate is_hydrated local_uuid object_id"  # Modal's _Object's
_FUNCTION = f"""
    {_OBJECT} experimental_spawn_map for_each from_local get_build_def get_current_stats get_raw_f
    info logs spawn_map spec stub tag update_autoscaler with_batching
"""
ATTRIBUTES: Mapping[str, frozenset[str]] = {
    "App": _names(
        """
        deploy description get_dashboard_url get_tags include is_interactive logs lookup
        registered_web_endpoints run server
        set_description set_tags
        """
    ),
    "Function": _names(_FUNCTION),
    # What Function.from_name returns, Modal's Function too: it lacks what an app's own one has as
    # well, and has hydrate().
    "FunctionHandle": _names(_FUNCTION + " app is_generator local") - {"hydrate"},
    "FunctionCall": _names(f"{_OBJECT} gather iter logs num_inputs") - {"object_id"},
    "Image": _names(
        f"""
        {_OBJECT} build cmd dockerfile_commands entrypoint from_aws_ecr from_dockerfile
        from_gcp_artifact_registry from_id from_name from_scratch imports micromamba micromamba_install
        pip_install_private_repos pipe poetry_install_from_file publish run_function shell uv_sync
        """
    ),
    "Secret": _names(f"{_OBJECT} from_dotenv from_local_environ info objects update"),
}

# The public names of Modal's modal/exception.py that client/exceptions.py lacks.
EXCEPTIONS = _names(
    """
    AsyncUsageWarning ClientClosed ConflictError DataLossError DeprecationError DeserializationError
    ExecTimeoutError FilesystemExecutionError ImageBuildError
    InteractiveTimeoutError InternalError InternalFailure LogsFetchError ModuleNotMountable
    MountUploadTimeoutError OutputExpiredError PermissionDeniedError RequestSizeError
    ResourceExhaustedError SandboxFilesystemDirectoryNotEmptyError SandboxFilesystemError
    SandboxFilesystemFileTooLargeError SandboxFilesystemIsADirectoryError
    SandboxFilesystemNotADirectoryError SandboxFilesystemNotFoundError
    SandboxFilesystemPathAlreadyExistsError SandboxFilesystemPermissionError SandboxTerminatedError
    SandboxTimeoutError SerializationError ServerWarning ServiceError SnapshotCreationError
    UnimplementedError UserCodeException VersionError VolumeUploadTimeoutError
    WorkspaceManagementError simulate_preemption
    """
)

# Modal's modules that app files import, as (stoker's module that defines their objects, Modal's
# public names in them). `import modal.functions` gives a module holding those names, the very
# objects `modal.Function` etc. are; a name stoker lacks raises "not supported yet". Add a row
# (or a name) when stoker gains a module's objects.
MODULE_ALIASES: Mapping[str, tuple[str, frozenset[str]]] = {
    "app": ("client.app", _names("App LocalEntrypoint")),
    "functions": ("client.function", _names("Function FunctionCall")),
    "partial_function": (
        "client.partial",
        _names(
            """
            PartialFunction asgi_app batched concurrent enter exit fastapi_endpoint method web_endpoint
            web_server wsgi_app
            """
        ),
    ),
    "exception": (
        "client.exceptions",
        _names("AlreadyExistsError AuthError ConnectionError Error ExecutionError InvalidError NotFoundError")
        | _names("InputCancellation RemoteError TimeoutError FunctionTimeoutError")
        | EXCEPTIONS,
    ),
    "cls": ("client.cls", _names("Cls Obj parameter")),
    "call_graph": ("client.call_graph", _names("InputInfo InputStatus")),
    "image": ("client.image", _names("Image")),
    "secret": ("client.secret", _names("Secret")),
}


def not_supported(name: str) -> InvalidError:
    """The error for a Modal name that stoker lacks; `name` as the user wrote it after `modal.`."""
    return InvalidError(
        f"stoker does not support modal.{name} yet (README.md, 'Modal names', lists what stoker supports)"
    )


def missing_module_attribute(module: str, name: str, modal_names: frozenset[str]) -> NoReturn:
    """What a module's `__getattr__` raises: "not supported yet" for Modal's names, else Python's own error."""
    if name in modal_names:
        raise not_supported(name if module == "modal" else f"{module.removeprefix('modal.')}.{name}")
    hint = RENAMED.get(name, "") if module == "modal" else ""
    raise AttributeError(f"module {module!r} has no attribute {name!r}" + (f". {hint}" if hint else ""), name=name)


def missing_attribute(owner: object, shown_as: str, name: str) -> NoReturn:
    """What `__getattr__` of App, Function, ... raises; `shown_as` is Modal's name of the class."""
    if name in ATTRIBUTES[type(owner).__name__]:
        raise not_supported(f"{shown_as}.{name}")
    raise AttributeError(f"{shown_as!r} object has no attribute {name!r}", name=name, obj=owner)


def alias_modules(package: ModuleType, as_name: str = "modal") -> None:
    """Register `<as_name>.functions`, `<as_name>.exception`, ... as views onto stoker's SDK."""
    for short, (home, names) in MODULE_ALIASES.items():
        full = f"{as_name}.{short}"
        view = module_view(full, importlib.import_module(home), package, names)
        sys.modules.setdefault(full, view)
        # `modal.app`, `modal.image`, `modal.secret` as attributes stay stoker's own modules of that
        # name (stoker's code imports them as such); they hold the same objects.
        if short not in vars(package):
            setattr(package, short, view)


def module_view(full_name: str, home: ModuleType, package: ModuleType, names: frozenset[str]) -> ModuleType:
    """A module named `full_name` holding those of `names` that stoker defines (in `home`, or at
    the top of the SDK package), raising "not supported yet" for the others."""
    view = ModuleType(full_name, f"Modal's {full_name}, as stoker's SDK provides it.")
    found: dict[str, Any] = {}
    for name in sorted(names):
        for source in (vars(home), vars(package)):
            if name in source:
                found[name] = source[name]
                break
    vars(view).update(found)
    view.__all__ = sorted(found)  # type: ignore[attr-defined]
    lacking = names - found.keys()

    def __getattr__(name: str) -> NoReturn:
        missing_module_attribute(full_name, name, lacking)

    view.__getattr__ = __getattr__  # type: ignore[method-assign]
    return view


# Parameters of Modal's `@app.function()` that stoker does not implement. Each defaults to a falsy
# value (None, False, {}, 0) on Modal; given anything else it is refused, since it changes what the
# function does there and would do nothing here.
FUNCTION_OPTIONS = _names(
    """
    _experimental_restrict_output env ephemeral_disk
    experimental_options i6pn is_generator max_inputs network_file_systems proxy
    restrict_modal_access schedule single_use_containers volumes
    """
)

# Parameters accepted and ignored, because ignoring them changes nothing a user can observe here.
IGNORED_FUNCTION_OPTIONS: Mapping[str, str] = {
    "serialized": "containers import the app file, so every function it defines at import is found",
    "include_source": "the app file's folder is always shipped; more source present hides nothing",
    "region": "a stoker cluster is one place: there is no region to choose",
    "cloud": "a stoker cluster is one place: there is no cloud to choose",
    "routing_region": "a stoker cluster is one place: there is no region to route through",
    "nonpreemptible": "stoker never preempts containers",
}

# Parameters of Modal's `App(...)`, likewise.
APP_OPTIONS: frozenset[str] = frozenset({"volumes"})
IGNORED_APP_OPTIONS: Mapping[str, str] = {
    "include_source": IGNORED_FUNCTION_OPTIONS["include_source"],
    "tags": "tags are only read back through App.get_tags, which stoker does not have",
}


def check_options(call: str, given: Mapping[str, Any], unsupported: frozenset[str], ignored: Mapping[str, str]) -> None:
    """Refuse `given` keyword arguments that are not stoker's own (`call` is how the user wrote the
    call, e.g. "@app.function()"): Modal's that stoker lacks, then names Modal does not have either."""
    refused = sorted(name for name, value in given.items() if name in unsupported and value)
    if refused:
        options = ", ".join(f"{name}=" for name in refused)
        raise InvalidError(
            f"stoker does not support {call.removesuffix('()')}({options}) yet; remove it "
            "(README.md, 'Modal names', lists what stoker supports)"
        )
    unknown = sorted(name for name in given if name not in unsupported and name not in ignored)
    if unknown:
        raise InvalidError(f"{call} got unknown parameters: {', '.join(unknown)}")
