"""What the runtime needs of one web function or web method to serve it (worker/runtime/web.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from client.partial import WebConfig


@dataclass(frozen=True)
class Endpoint:
    name: str  # for messages: `square`, or `Model.web` for a method
    web: WebConfig
    f: Callable[..., Any]  # the user's function; a method is bound to the container's instance
    max_inputs: int
