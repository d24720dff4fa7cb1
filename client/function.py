"""Functions registered on an App."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from client.image import Image
from client.partial import WebConfig
from client.secret import Secret
from protos import stoker_pb2 as pb

if TYPE_CHECKING:
    from client.app import App

# Set by the worker in every container: {function name: URL} for the app's web functions.
WEB_URLS_ENV = "STOKER_WEB_URLS"


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


class Function:
    """A function of an app. Calling it runs it here, in this process."""

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

    def get_web_url(self) -> str | None:
        """The URL of this web function, as deploy printed it; None for other functions."""
        if self.web is None:
            return None
        urls: dict[str, str] = json.loads(os.environ.get(WEB_URLS_ENV, "{}"))
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
