"""Fixtures for the unit tests: pure code only, no sockets or processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import client.app

AppFactory = Callable[..., client.app.App]


@pytest.fixture
def make_app() -> Iterator[AppFactory]:
    """Builds Apps, and keeps them out of the process-wide list the app-file loader reads."""
    saved = list(client.app.created_apps)

    def make(name: str = "demo", **kwargs: Any) -> client.app.App:
        return client.app.App(name, **kwargs)

    yield make
    client.app.created_apps[:] = saved


@pytest.fixture
def app(make_app: AppFactory) -> client.app.App:
    return make_app()
