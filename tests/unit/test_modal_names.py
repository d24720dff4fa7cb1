"""Modal's names stoker lacks ("not supported yet"), and the `modal.functions`, ... module aliases."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import client
from client import modal_names
from client.app import App
from client.calls import FunctionCall
from client.exceptions import InvalidError
from client.function import Function
from client.image import Image
from client.secret import Secret
from tests.unit.conftest import AppFactory


def handler() -> None:
    pass


def _instances(app: App) -> dict[str, object]:
    """One object of each class that has a list, built as users build them."""
    return {
        "App": app,
        "Function": app.function()(handler),
        "FunctionHandle": Function.from_name("other-app", "f"),
        "FunctionCall": FunctionCall.from_id("fc-1"),
        "Image": Image.debian_slim().pip_install("fastapi"),
        "Secret": Secret.from_dict({"K": "v"}),
    }


def test_every_class_with_a_list_is_covered(app: App) -> None:
    instances = _instances(app)
    assert set(instances) == set(modal_names.ATTRIBUTES)
    assert {type(o).__name__ for o in instances.values()} == set(modal_names.ATTRIBUTES)


# These fail when stoker gains a listed name: take it off the list (and README's) in the same commit.


def test_every_listed_attribute_really_is_missing(app: App) -> None:
    for key, instance in _instances(app).items():
        cls = type(instance)
        listed = modal_names.ATTRIBUTES[key]
        present = {n for n in listed if n in vars(instance) or inspect.getattr_static(cls, n, None) is not None}
        assert not present, f"{key} has {sorted(present)}: remove them from modal_names.ATTRIBUTES[{key!r}]"


def test_every_listed_top_level_name_really_is_missing() -> None:
    present = sorted(n for n in modal_names.TOP_LEVEL if n in vars(client))
    assert not present, f"client has {present}: remove them from modal_names.TOP_LEVEL"
    # `from client import x` asks hasattr(client, x) before importing the submodule x: a listed
    # name must never be one, or the import would raise "not supported" instead.
    submodules = {m.name for m in pkgutil.iter_modules(client.__path__)}
    assert not modal_names.TOP_LEVEL & submodules


def test_every_listed_exception_really_is_missing() -> None:
    import client.exceptions

    present = sorted(n for n in modal_names.EXCEPTIONS if n in vars(client.exceptions))
    assert not present, f"client.exceptions has {present}: remove them from modal_names.EXCEPTIONS"


def test_no_list_holds_a_private_or_dunder_name() -> None:
    # Python, pickle and copy probe dunders with getattr(obj, name, default); those must stay AttributeErrors.
    lists = [modal_names.TOP_LEVEL, modal_names.EXCEPTIONS, *modal_names.ATTRIBUTES.values()]
    assert not [n for names in lists for n in names if n.startswith("__")]


@pytest.mark.parametrize("name", sorted(modal_names.TOP_LEVEL))
def test_a_modal_name_stoker_lacks_is_not_supported_yet(name: str) -> None:
    with pytest.raises(InvalidError, match=rf"^stoker does not support modal\.{name} yet"):
        getattr(client, name)


def test_a_name_modal_does_not_have_either_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'modal' has no attribute 'Volumes'"):
        client.Volumes  # noqa: B018
    assert not hasattr(client, "no_such_name")
    with pytest.raises(AttributeError, match=r"Use `modal\.App` instead"):
        client.Stub  # noqa: B018


def test_a_missing_modal_attribute_is_not_supported_yet(app: App) -> None:
    cases = [
        (app, "include", "App.include"),
        (app, "run", "App.run"),
        (app.function()(handler), "with_batching", "Function.with_batching"),
        (Function.from_name("a", "b"), "spawn_map", "Function.spawn_map"),
        (FunctionCall.from_id("fc-1"), "iter", "FunctionCall.iter"),
        (Image.debian_slim(), "micromamba_install", "Image.micromamba_install"),
        (Secret.from_name("s"), "from_dotenv", "Secret.from_dotenv"),
    ]
    for owner, attribute, shown in cases:
        with pytest.raises(InvalidError, match=rf"^stoker does not support modal\.{shown} yet"):
            getattr(owner, attribute)


def test_other_missing_attributes_stay_attribute_errors(app: App) -> None:
    with pytest.raises(AttributeError, match="'App' object has no attribute 'functoin'"):
        app.functoin  # noqa: B018
    assert getattr(Image.debian_slim(), "__deepcopy__", None) is None
    assert not hasattr(Secret.from_name("s"), "nope")


@pytest.fixture
def aliased() -> Iterator[ModuleType]:
    """`modal` and its module aliases, as in stoker's CLI and containers; removed after."""
    before = dict(sys.modules)
    attributes = set(vars(client))
    from client.appfile import alias_modal

    alias_modal()
    yield importlib.import_module("modal")
    for name in set(sys.modules) - set(before):
        del sys.modules[name]
    for name in set(vars(client)) - attributes:
        delattr(client, name)


def test_alias_modules_hold_the_same_objects_as_the_top_level(aliased: ModuleType) -> None:
    from modal.app import App as AliasApp  # type: ignore[import-not-found]
    from modal.exception import InvalidError as AliasInvalidError  # type: ignore[import-not-found]
    from modal.functions import Function as AliasFunction  # type: ignore[import-not-found]
    from modal.functions import FunctionCall as AliasFunctionCall
    from modal.image import Image as AliasImage  # type: ignore[import-not-found]
    from modal.partial_function import asgi_app, fastapi_endpoint  # type: ignore[import-not-found]
    from modal.secret import Secret as AliasSecret  # type: ignore[import-not-found]

    assert aliased is client
    assert (AliasApp, AliasFunction, AliasFunctionCall, AliasImage, AliasSecret) == (
        App,
        Function,
        FunctionCall,
        Image,
        Secret,
    )
    assert AliasInvalidError is InvalidError
    assert (fastapi_endpoint, asgi_app) == (client.fastapi_endpoint, client.asgi_app)
    import modal.functions  # type: ignore[import-not-found]

    assert modal.functions.Function is Function  # as an attribute of `modal` too


def test_every_alias_name_is_the_sdk_object_or_not_supported_yet(aliased: ModuleType) -> None:
    for short, (_, names) in modal_names.MODULE_ALIASES.items():
        view = sys.modules[f"modal.{short}"]
        for name in names:
            top: Any = vars(client).get(name)
            if name in vars(view):
                assert top is None or vars(view)[name] is top, f"modal.{short}.{name} is not modal.{name}"
            else:
                # A name stoker has somewhere but the view missed would be "not supported" wrongly.
                assert top is None, f"modal.{name} exists: modal.{short}.{name} must be it"
                with pytest.raises(InvalidError, match=rf"stoker does not support modal\.{short}\.{name} yet"):
                    getattr(view, name)


def test_alias_views_refuse_unknown_names_as_python_does(aliased: ModuleType) -> None:
    with pytest.raises(ImportError, match=r"cannot import name 'Nope' from 'modal\.exception'"):
        from modal.exception import Nope  # type: ignore[import-not-found]  # noqa: F401
    with pytest.raises(InvalidError, match=r"modal\.exception\.SandboxTimeoutError"):
        from modal.exception import SandboxTimeoutError  # type: ignore[import-not-found]  # noqa: F401


def test_function_timeout_error_is_reachable_as_modals(aliased: ModuleType) -> None:
    from modal.exception import FunctionTimeoutError, TimeoutError  # type: ignore[import-not-found]

    import client.exceptions

    assert FunctionTimeoutError is client.exceptions.FunctionTimeoutError
    assert issubclass(FunctionTimeoutError, TimeoutError)


def test_the_stoker_modules_behind_the_aliases_are_not_loaded_twice(aliased: ModuleType) -> None:
    import modal.app  # type: ignore[import-not-found]
    import modal.image  # type: ignore[import-not-found]

    # A second copy of client/app.py would hold a second App class and a second list of apps.
    assert modal.app is sys.modules["client.app"]
    assert sys.modules["modal.app"].App is App
    assert modal.image.Image is Image


def test_check_options_names_every_refused_option(make_app: AppFactory) -> None:
    with pytest.raises(InvalidError, match=r"@app.function\(ephemeral_disk=, volumes=\) yet"):
        make_app().function(ephemeral_disk=2, volumes={"/v": object()}, region="eu")
