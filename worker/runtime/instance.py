"""An `@app.cls` class in its container: one instance, its parameters set, its `@modal.enter`
hooks run before the first input, its methods served by name, its `@modal.exit` hooks run when
the container stops.

`@modal.enter(snap=True)` hooks run first, then the `snap=False` ones. With
`enable_memory_snapshot=True` the snap=True ones ran before, in the template the container was
forked from (worker/runtime/snapshot.py); without it, both run here, in Modal's order. The hooks
run here may take the class's `startup_timeout` together (the template's have their own);
past it the container fails as it does when a hook raises.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import traceback
from collections.abc import Callable
from typing import Any

from client.cls import Cls
from protos import container_env as cenv
from protos import parameters as wire_parameters
from worker.runtime.batching import callee_for
from worker.runtime.endpoint import Endpoint
from worker.runtime.served import Served, StartupError
from worker.runtime.threads import Threads
from worker.runtime.web import build_endpoint_app

log = logging.getLogger("stoker.container")

# Seconds all @modal.exit hooks together may take. The worker kills a container 10 s after asking
# it to stop, and the drain of its inputs in flight (up to DRAIN_SECONDS, 5) comes first.
EXIT_GRACE_SECONDS = 4.0


def new_instance(cls: Cls) -> object:
    """An instance of the class with this container's parameters set (cenv.PARAMETERS)."""
    assert cls.user_cls is not None
    values = wire_parameters.decode(list(cls.to_proto().parameters), bytes.fromhex(os.environ.get(cenv.PARAMETERS, "")))
    instance = cls.user_cls()
    for name, value in values.items():
        setattr(instance, name, value)
    return instance


async def run_enter_hooks(cls: Cls, instance: object, stages: tuple[str, ...]) -> None:
    """The class's @modal.enter hooks of `stages` ("enter_snap": snap=True, "enter": the others),
    in order, within its startup_timeout; StartupError when one raised (its traceback logged) or
    they ran past it."""
    assert cls.members is not None and cls.options is not None
    startup_timeout = cls.options.startup_timeout
    threads = Threads()
    running = ""
    try:
        async with asyncio.timeout(startup_timeout):
            for stage in stages:
                for hook in cls.members.hooks_of(stage):
                    running = f"{cls.name}.{hook.raw_f.__name__}"
                    try:
                        await _run(hook.raw_f, instance, threads)
                    except Exception as exc:
                        log.error("@modal.enter method %s raised:\n%s", running, traceback.format_exc())
                        failed = f"@modal.enter method {running} failed: {type(exc).__name__}: {exc}"
                        raise StartupError(failed) from None
    except TimeoutError:
        raise StartupError(
            f"the @modal.enter methods of {cls.name} ran longer than startup_timeout={startup_timeout:g} s "
            f"(in {running}); raise startup_timeout= on @app.cls if they need longer"
        ) from None


async def serve_class(cls: Cls, snapped: object | None = None) -> Served:
    """The instance, entered, and what it serves; StartupError when an enter hook raised.
    `snapped`: an instance whose snap=True hooks ran in a memory snapshot this container forked from."""
    assert cls.user_cls is not None and cls.members is not None and cls.options is not None
    instance = snapped if snapped is not None else new_instance(cls)
    await run_enter_hooks(cls, instance, ("enter",) if snapped is not None else ("enter_snap", "enter"))
    served = Served(cls.name, cls.options.max_inputs, cls.options.timeout)
    for info in cls.members.methods.values():
        bound = info.raw_f.__get__(instance, cls.user_cls)
        qualified = f"{cls.name}.{info.name}"
        if info.web is not None:
            served.web_apps[info.name] = build_endpoint_app(
                Endpoint(qualified, info.web, bound, cls.options.max_inputs)
            )
        else:
            served.callees[info.name] = callee_for(qualified, bound, info.is_generator, cls.options.timeout, info.batch)
    exit_hooks = cls.members.hooks_of("exit")
    if exit_hooks:

        async def on_stop() -> None:
            try:
                async with asyncio.timeout(EXIT_GRACE_SECONDS):
                    for hook in exit_hooks:
                        try:
                            await _run(hook.raw_f, instance, Threads())
                        except Exception:
                            log.error(
                                "@modal.exit method %s.%s raised:\n%s",
                                cls.name,
                                hook.raw_f.__name__,
                                traceback.format_exc(),
                            )
            except TimeoutError:
                log.warning("@modal.exit methods of %s did not finish within %g s", cls.name, EXIT_GRACE_SECONDS)

        served.on_stop = on_stop
    return served


async def _run(f: Callable[..., Any], instance: object, threads: Threads) -> None:
    """A hook: awaited when async, else run in a thread (a hook may take long: a model loading)."""
    if inspect.iscoroutinefunction(f):
        await f(instance)
    else:
        await threads.run(f, instance)
