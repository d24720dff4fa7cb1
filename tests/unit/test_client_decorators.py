"""The SDK's decorators record what Modal's parameters say, and Function.to_proto carries it."""

from __future__ import annotations

from typing import Any

import pytest

import client
from client.app import App
from client.exceptions import InvalidError
from client.function import Function
from client.partial import PartialFunction, WebConfig
from tests.unit.conftest import AppFactory


def handler() -> str:
    return "ok"


def register(app: App, *decorators: Any, **options: Any) -> Function:
    """Apply `decorators` (innermost last) under `@app.function(**options)` to `handler`."""
    f: Any = handler
    for decorator in reversed(decorators):
        f = decorator(f)
    return app.function(**options)(f)


def test_the_package_exports_modal_names() -> None:
    for name in (
        "App",
        "Image",
        "Secret",
        "fastapi_endpoint",
        "web_endpoint",
        "asgi_app",
        "wsgi_app",
        "web_server",
        "concurrent",
        "InvalidError",
    ):
        assert hasattr(client, name)


def test_plain_function_gets_defaults(app: App) -> None:
    fn = register(app)
    assert fn.name == "handler"
    assert fn.web is None
    spec = fn.to_proto()
    assert spec.name == "handler"
    assert not spec.HasField("web")
    assert not spec.HasField("image")
    assert (spec.min_containers, spec.max_containers, spec.buffer_containers) == (0, 0, 0)
    assert spec.scaledown_window == 60.0
    assert spec.timeout == 300.0
    assert spec.max_inputs == 1
    assert spec.target_inputs == 0
    assert spec.gpu == ""


def test_registered_function_still_runs_locally(app: App) -> None:
    fn = register(app, client.fastapi_endpoint())
    assert fn() == "ok"
    assert fn.local() == "ok"
    assert app.registered_functions == {"handler": fn}


def test_name_parameter_overrides_the_function_name(app: App) -> None:
    assert register(app, name="other").to_proto().name == "other"


def test_fastapi_endpoint_records_its_parameters(app: App) -> None:
    fn = register(
        app,
        client.fastapi_endpoint(
            method="post",
            label="my-api",
            custom_domains=["api.example.com", "*.example.org"],
            docs=True,
            requires_proxy_auth=True,
        ),
    )
    assert fn.web == WebConfig(
        kind="fastapi_endpoint",
        method="POST",
        label="my-api",
        custom_domains=("api.example.com", "*.example.org"),
        docs=True,
        requires_proxy_auth=True,
    )
    web = fn.to_proto().web
    assert web.kind == "fastapi_endpoint"
    assert web.method == "POST"
    assert web.label == "my-api"
    assert list(web.custom_domains) == ["api.example.com", "*.example.org"]
    assert web.docs is True
    assert web.requires_proxy_auth is True


def test_fastapi_endpoint_defaults(app: App) -> None:
    web = register(app, client.fastapi_endpoint()).to_proto().web
    assert (web.kind, web.method, web.label, list(web.custom_domains)) == ("fastapi_endpoint", "GET", "", [])
    assert web.docs is False
    assert web.requires_proxy_auth is False


def test_web_endpoint_is_the_old_name_of_fastapi_endpoint(app: App) -> None:
    assert register(app, client.web_endpoint(method="PUT")).to_proto().web.kind == "fastapi_endpoint"


@pytest.mark.parametrize("method", ["GETT", "CONNECT", "", "get post"])
def test_fastapi_endpoint_refuses_a_bad_http_method(method: str) -> None:
    with pytest.raises(InvalidError, match="not an HTTP method"):
        client.fastapi_endpoint(method=method)


def test_asgi_app_records_its_parameters(app: App) -> None:
    fn = register(app, client.asgi_app(label="chat", custom_domains=["chat.example.com"], requires_proxy_auth=True))
    web = fn.to_proto().web
    assert (web.kind, web.label, list(web.custom_domains)) == ("asgi_app", "chat", ["chat.example.com"])
    assert web.requires_proxy_auth is True


def test_wsgi_app_records_its_parameters(app: App) -> None:
    web = register(app, client.wsgi_app(label="flask")).to_proto().web
    assert (web.kind, web.label) == ("wsgi_app", "flask")
    assert web.requires_proxy_auth is False


def test_web_server_records_port_and_startup_timeout(app: App) -> None:
    web = register(app, client.web_server(8000, startup_timeout=30.0, label="srv")).to_proto().web
    assert (web.kind, web.port, web.startup_timeout, web.label) == ("web_server", 8000, 30.0, "srv")


@pytest.mark.parametrize("port", [0, -1, 65536, "8000", 80.0])
def test_web_server_refuses_a_bad_port(port: Any) -> None:
    with pytest.raises(InvalidError, match="port"):
        client.web_server(port)


@pytest.mark.parametrize(
    "decorator",
    [client.fastapi_endpoint, client.asgi_app, client.wsgi_app],
)
def test_decorators_without_parentheses_are_refused(decorator: Any) -> None:
    with pytest.raises(InvalidError, match="parentheses"):
        decorator(handler)


def test_app_function_without_parentheses_is_refused(app: App) -> None:
    with pytest.raises(InvalidError, match="parentheses"):
        app.function(handler)


def test_web_decorator_refuses_a_non_callable() -> None:
    with pytest.raises(InvalidError, match="must decorate a function"):
        client.asgi_app()("not a function")


def test_two_web_decorators_on_one_function_are_refused() -> None:
    with pytest.raises(InvalidError, match="two web decorators"):
        client.asgi_app()(client.fastapi_endpoint()(handler))


def test_concurrent_records_max_and_target_inputs(app: App) -> None:
    spec = register(app, client.concurrent(max_inputs=10, target_inputs=4)).to_proto()
    assert (spec.max_inputs, spec.target_inputs) == (10, 4)


@pytest.mark.parametrize("order", ["concurrent_outside", "concurrent_inside"])
def test_concurrent_combines_with_a_web_decorator_in_either_order(app: App, order: str) -> None:
    decorators = [client.concurrent(max_inputs=8), client.fastapi_endpoint(method="POST")]
    if order == "concurrent_inside":
        decorators.reverse()
    spec = register(app, *decorators).to_proto()
    assert spec.max_inputs == 8
    assert spec.web.kind == "fastapi_endpoint"
    assert spec.web.method == "POST"


@pytest.mark.parametrize("max_inputs", [0, -3])
def test_concurrent_refuses_max_inputs_below_one(max_inputs: int) -> None:
    with pytest.raises(InvalidError, match="max_inputs must be at least 1"):
        client.concurrent(max_inputs=max_inputs)


@pytest.mark.parametrize("target_inputs", [0, 11])
def test_concurrent_refuses_target_inputs_outside_one_to_max(target_inputs: int) -> None:
    with pytest.raises(InvalidError, match="target_inputs"):
        client.concurrent(max_inputs=10, target_inputs=target_inputs)


def test_decorators_return_partial_functions_that_still_call() -> None:
    partial = client.fastapi_endpoint()(handler)
    assert isinstance(partial, PartialFunction)
    assert partial() == "ok"


def test_app_function_records_scaling_and_resources(app: App) -> None:
    spec = register(
        app,
        min_containers=1,
        max_containers=5,
        buffer_containers=2,
        scaledown_window=120,
        timeout=30,
        cpu=2.5,
        memory=4096,
    ).to_proto()
    assert (spec.min_containers, spec.max_containers, spec.buffer_containers) == (1, 5, 2)
    assert spec.scaledown_window == 120.0
    assert spec.timeout == 30.0
    assert spec.cpu == 2.5
    assert spec.memory_mib == 4096


@pytest.mark.parametrize(
    ("gpu", "expected"),
    [("A100", "A100"), ("H100:2", "H100:2"), (["H100", "A100-80GB"], "H100,A100-80GB"), (None, "")],
)
def test_app_function_records_gpu_as_a_string(app: App, gpu: Any, expected: str) -> None:
    assert register(app, gpu=gpu).to_proto().gpu == expected


def test_old_modal_names_map_onto_the_current_ones(app: App) -> None:
    spec = register(
        app,
        keep_warm=2,
        concurrency_limit=7,
        container_idle_timeout=90,
        allow_concurrent_inputs=16,
    ).to_proto()
    assert spec.min_containers == 2
    assert spec.max_containers == 7
    assert spec.scaledown_window == 90.0
    assert spec.max_inputs == 16


def test_current_names_win_over_old_names(app: App) -> None:
    spec = register(
        app,
        min_containers=1,
        keep_warm=3,
        max_containers=4,
        concurrency_limit=9,
        scaledown_window=10,
        container_idle_timeout=99,
    ).to_proto()
    assert (spec.min_containers, spec.max_containers, spec.scaledown_window) == (1, 4, 10.0)


def test_concurrent_wins_over_allow_concurrent_inputs(app: App) -> None:
    spec = register(app, client.concurrent(max_inputs=3), allow_concurrent_inputs=20).to_proto()
    assert spec.max_inputs == 3


@pytest.mark.parametrize("option", ["min_containers", "max_containers", "buffer_containers", "keep_warm"])
def test_negative_container_counts_are_refused(app: App, option: str) -> None:
    with pytest.raises(InvalidError, match="must be at least 0"):
        register(app, **{option: -1})


def test_unknown_app_function_parameter_is_refused(app: App) -> None:
    with pytest.raises(InvalidError, match="unknown parameters: bogus, gpus"):
        app.function(gpus="A100", bogus=1)


def test_parameters_that_change_nothing_here_are_accepted(app: App) -> None:
    fn = register(
        app,
        serialized=True,
        region="us-east",
        cloud="aws",
        routing_region="us-east",
        nonpreemptible=True,
        include_source=False,
        # Modal's features stoker lacks, at their defaults: nothing to refuse.
        volumes={},
        enable_memory_snapshot=False,
    )
    assert fn.to_proto().name == "handler"


@pytest.mark.parametrize(
    ("option", "value"),
    [("ephemeral_disk", 1024), ("volumes", {"/data": object()}),
     ("schedule", object()), ("env", {"K": "v"}), ("single_use_containers", True)],
)  # fmt: skip
def test_modal_parameters_stoker_lacks_are_not_supported_yet(app: App, option: str, value: object) -> None:
    with pytest.raises(InvalidError, match=rf"stoker does not support @app.function\({option}=\) yet"):
        register(app, **{option: value})


def test_modal_app_volumes_are_not_supported_yet(make_app: AppFactory) -> None:
    with pytest.raises(InvalidError, match=r"stoker does not support modal.App\(volumes=\) yet"):
        make_app("with-volumes", volumes={"/data": object()})
    with pytest.raises(InvalidError, match="unknown parameters: mounts"):
        make_app("with-mounts", mounts=[])


def test_duplicate_function_name_is_refused(app: App) -> None:
    register(app)
    with pytest.raises(InvalidError, match="already has a function named 'handler'"):
        register(app)


def test_duplicate_name_via_name_parameter_is_refused(app: App) -> None:
    register(app, name="web")
    with pytest.raises(InvalidError, match="'web'"):
        register(app, name="web")


def test_secrets_of_app_and_function_are_both_named(make_app: AppFactory) -> None:
    with_secret = make_app("with-secret", secrets=[client.Secret.from_name("app-secret")])
    fn = register(with_secret, secrets=[client.Secret.from_name("fn-secret"), client.Secret.from_dict({"K": "v"})])
    assert list(fn.to_proto().secret_names) == ["app-secret", "fn-secret"]


def test_function_image_wins_over_app_image(make_app: AppFactory) -> None:
    app_image = client.Image.debian_slim().pip_install("a")
    fn_image = client.Image.debian_slim().pip_install("b")
    with_image = make_app("with-image", image=app_image)
    assert list(register(with_image).to_proto().image.steps[0].pip_install.packages) == ["a"]
    assert list(register(with_image, image=fn_image, name="h2").to_proto().image.steps[0].pip_install.packages) == ["b"]


def test_creating_an_app_records_it_for_the_loader(app: App) -> None:
    assert client.app.created_apps[-1] is app


@pytest.mark.parametrize(("option", "default"), [("scaledown_window", 60.0), ("timeout", 300.0)])
def test_an_explicit_zero_is_not_silently_replaced_by_the_default(app: App, option: str, default: float) -> None:
    try:
        spec = register(app, **{option: 0}).to_proto()
    except InvalidError:
        return  # refusing zero is fine too
    assert getattr(spec, option) != default


@pytest.mark.parametrize("option", ["scaledown_window", "timeout"])
def test_a_negative_duration_is_refused(app: App, option: str) -> None:
    with pytest.raises(InvalidError):
        register(app, **{option: -5})
