"""`@web_server(port)`: run the user's function (it starts a server) and wait for its port.

Containers on one worker share its network, so the port must be free before the function runs:
a server already answering there belongs to someone else, and forwarding to it would serve the
wrong app. The scheduler keeps two containers needing the same port off one worker
(scheduler/placement.py), so this only trips on a port taken by a process outside stoker.
"""

from __future__ import annotations

import inspect
import socket
import time

from client.exceptions import InvalidError
from worker.runtime.endpoint import Endpoint
from worker.runtime.forward import Forwarder

PROBE_INTERVAL = 0.05
PROBE_HOST = "127.0.0.1"  # the server must accept on loopback (binding 0.0.0.0 does)


class WebServerStartupError(Exception):
    """The function's server never accepted connections on its port."""


def start_web_server(function: Endpoint) -> Forwarder:
    """Run the @web_server function, wait until its port accepts connections, return the proxy."""
    web = function.web
    assert web.kind == "web_server"
    port, timeout = web.port, web.startup_timeout
    if accepts(port):
        raise WebServerStartupError(
            f"@web_server({port}) function {function.name}: port {port} is already in use on this worker by "
            "a process outside this container; choose another port or stop that process"
        )
    result = function.f()
    if inspect.isawaitable(result):
        raise InvalidError(
            f"@web_server function {function.name} must be a plain function that starts a server, not async"
        )
    if not wait_for_port(port, timeout):
        raise WebServerStartupError(
            f"@web_server({port}) function {function.name}: nothing accepted connections on port {port} "
            f"within startup_timeout={timeout:g} s. The function must start a server listening on port {port} "
            "(bound to 0.0.0.0 or 127.0.0.1); raise startup_timeout if it needs longer to start"
        )
    return Forwarder(port)


def accepts(port: int) -> bool:
    try:
        with socket.create_connection((PROBE_HOST, port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_port(port: int, timeout: float) -> bool:
    """Whether `port` accepts a connection within `timeout` seconds (probed at least once)."""
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        if accepts(port):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(PROBE_INTERVAL)
