"""What one container serves, by name: the calls it runs and the ASGI apps of its web endpoints.

A function container serves one of each under the name "" (requests and calls name no method);
a class container serves its instance's methods under their names (worker/runtime/instance.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from client.batching import BatchConfig
from client.function import Function
from worker.runtime.batching import Batcher, callee_for
from worker.runtime.calls import Callee
from worker.runtime.web import ASGIApp, build_asgi_app


class StartupError(Exception):
    """The container cannot serve; the message says why, as its last line of output."""


@dataclass
class Served:
    name: str
    max_inputs: int
    timeout: float  # seconds per input, requests and calls alike
    callees: dict[str, Callee | Batcher] = field(default_factory=dict)  # by method name; "" for a function
    web_apps: dict[str, ASGIApp] = field(default_factory=dict)  # by method name; "" for a function
    on_stop: Callable[[], Awaitable[None]] | None = None  # @modal.exit hooks, bounded

    def callee(self, method_name: str) -> Callee | Batcher | None:
        return self.callees.get(method_name)


def serve_function(function: Function) -> Served:
    served = Served(function.name, function.options.max_inputs, function.options.timeout)
    if function.web is not None:
        served.web_apps[""] = build_asgi_app(function)
    else:
        o = function.options
        batch = BatchConfig(o.batch_max_size, o.batch_wait_ms) if o.batch_max_size else None
        served.callees[""] = callee_for(function.name, function.raw_f, function.is_generator, o.timeout, batch)
    return served
