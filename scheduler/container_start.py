"""What a worker is told to start a container with: the function, its code, and its environment
(secrets, the app's web URLs, a credential for calling functions)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from protos import container_env as cenv
from protos import stoker_pb2 as pb
from scheduler import call_credentials
from scheduler.model import Container, FunctionState
from scheduler.snapshots import snapshot_key


def start_command(
    fn: FunctionState,
    container: Container,
    secrets: Mapping[str, Mapping[str, str]],
    call_key: bytes,
    app_functions: Iterable[FunctionState],
) -> pb.StartContainer:
    """`container` of `fn`, given the named `secrets` and the functions of its app's version."""
    urls = {route.name: route.url for f in app_functions for route in f.web}
    env = {**secret_env(fn.spec, secrets), cenv.WEB_URLS: json.dumps(urls), **call_env(fn, call_key)}
    if fn.parameters:
        env[cenv.PARAMETERS] = fn.parameters.hex()
    if fn.overrides:  # what the container itself applies: its concurrency and timeout
        env[cenv.OPTIONS] = fn.overrides.hex()
    return pb.StartContainer(
        container_id=container.id,
        app_id=fn.app.app_id,
        app_name=fn.app.name,
        bundle_hash=fn.app.bundle_hash,
        entry=fn.app.definition.entry,
        function=fn.spec,
        env=env,
        gpu_indices=container.gpu_indices,
        image_id=fn.image_id,
        snapshot_key=snapshot_key(fn),
    )


def secret_env(spec: pb.FunctionSpec, secrets: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The function's secrets as environment variables, resolved at container start."""
    env: dict[str, str] = {}
    for name in spec.secret_names:
        env.update(secrets.get(name, {}))
    env.update(spec.secret_env)
    return env


def call_env(fn: FunctionState, call_key: bytes) -> dict[str, str]:
    """What the container's code needs to call functions: a credential scoped to calls from its
    app (never a workspace token), and its app's environment. The worker adds the scheduler's
    address."""
    return {
        cenv.TOKEN: call_credentials.mint(call_key, fn.app.app_id),
        cenv.ENVIRONMENT: fn.app.environment,
    }
