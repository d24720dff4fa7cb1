"""Functions registered on an App."""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from client.calls import CallTarget, FunctionHandle, Invocable
from client.exceptions import InvalidError
from client.image import Image
from client.partial import WebConfig
from client.secret import Secret
from protos import container_env as cenv
from protos import stoker_pb2 as pb

if TYPE_CHECKING:
    from client.app import App


@dataclass(frozen=True)
class FunctionOptions:
    """What `@app.function(...)` was told, in Modal's names."""

    image: Image | None = None
    gpu: str = ""
    secrets: tuple[Secret, ...] = ()
    min_containers: int = 0
    max_containers: int = 0  # 0: no limit
    buffer_containers: int = 0
    scaledown_window: float = 60.0
    timeout: float = 300.0
    max_inputs: int = 1
    target_inputs: int = 0
    cpu: float = 0.0
    memory_mib: int = 0


class Function(Invocable):
    """A function of an app. Calling it runs it here, in this process; `.remote()`,
    `.remote_gen()`, `.map()` and `.spawn()` run it in its app's containers."""

    def __init__(
        self,
        app: App,
        name: str,
        raw_f: Callable[..., Any],
        options: FunctionOptions,
        web: WebConfig | None,
    ) -> None:
        self.app = app
        self.name = name
        self.raw_f = raw_f
        self.options = options
        self.web = web
        self.__doc__ = raw_f.__doc__

    def __repr__(self) -> str:
        return f"<Function {self.app.name}.{self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.raw_f(*args, **kwargs)

    def local(self, *args: Any, **kwargs: Any) -> Any:
        return self.raw_f(*args, **kwargs)

    @staticmethod
    def from_name(app_name: str, name: str, environment_name: str | None = None) -> FunctionHandle:
        """The function `name` of the deployed app `app_name`, to call or to ask its URL. It is
        looked up on first use, which raises NotFoundError when there is no such app or function."""
        if not app_name or not name:
            raise InvalidError("Function.from_name needs an app name and a function name")
        environment = environment_name if environment_name is not None else os.environ.get(cenv.ENVIRONMENT, "")
        target = CallTarget(app_name=app_name, function=name, environment=environment)
        return FunctionHandle(target)

    def _call_target(self) -> CallTarget:
        if not self.app.name:
            raise InvalidError(f"{self.name} belongs to an app without a name: give modal.App a name to call it")
        return CallTarget(app_name=self.app.name, function=self.name, environment=os.environ.get(cenv.ENVIRONMENT, ""))

    def _web_url_for_error(self) -> str | None:
        return (self.get_web_url() or "") if self.web is not None else None

    def _is_generator(self) -> bool | None:
        return inspect.isgeneratorfunction(self.raw_f) or inspect.isasyncgenfunction(self.raw_f)

    def get_web_url(self) -> str | None:
        """The URL of this web function, as deploy printed it; None for other functions."""
        if self.web is None:
            return None
        urls: dict[str, str] = json.loads(os.environ.get(cenv.WEB_URLS, "{}"))
        return urls.get(self.name)

    def to_proto(self) -> pb.FunctionSpec:
        o = self.options
        spec = pb.FunctionSpec(
            name=self.name,
            image=o.image.to_proto() if o.image else None,
            gpu=o.gpu,
            secret_names=[s.name for s in o.secrets if s.name],
            secret_env={k: v for s in o.secrets for k, v in s.values},
            min_containers=o.min_containers,
            max_containers=o.max_containers,
            buffer_containers=o.buffer_containers,
            scaledown_window=o.scaledown_window,
            timeout=o.timeout,
            max_inputs=o.max_inputs,
            target_inputs=o.target_inputs,
            cpu=o.cpu,
            memory_mib=o.memory_mib,
        )
        if self.web is not None:
            w = self.web
            spec.web.CopyFrom(
                pb.WebEndpoint(
                    kind=w.kind,
                    method=w.method,
                    label=w.label,
                    custom_domains=list(w.custom_domains),
                    docs=w.docs,
                    requires_proxy_auth=w.requires_proxy_auth,
                    port=w.port,
                    startup_timeout=w.startup_timeout,
                )
            )
        return spec
