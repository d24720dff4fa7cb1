"""The worker's memory snapshots: for a function with `enable_memory_snapshot`, a fork template
that imported the app and ran the class's `@modal.enter(snap=True)` hooks (worker/runtime/
snapshot.py), from which its containers fork.

One template per snapshot key (the function of one app version, from the scheduler), image and
set of parameters (a class's parameter pools each get their own, since snap=True hooks see the
parameters), made when a container of it first needs one and kept while the scheduler says the
key is live (LiveSnapshots): when the version stops or is replaced, its templates fork no more
and exit once their last container has. At most MAX_PER_KEY templates of one key are kept (a
class called with many parameter sets); the least recently used one goes first.

What the template holds: its containers' environment, without what is each container's own (its
id, its call credential, the scheduler's address, its GPUs). So it holds the app's secrets, as a
Modal snapshot is taken with the function's secrets set, and nothing of the worker's own beyond
the allow-list every app process inherits (worker/inherited_env.py): never the cluster secret.
"""

from __future__ import annotations

import collections
import hashlib
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from protos import container_env as cenv
from protos import stoker_pb2 as pb
from protos.bundle import extract_bundle
from worker import image_launch
from worker.config import WorkerConfig
from worker.containers import READY_MARGIN, container_environment
from worker.images import BuiltImage
from worker.redact import Redactor, secret_values
from worker.sandbox.layout import CODE_DIR, SandboxLayout
from worker.template_client import ForkTemplate, TemplatePool

MAX_PER_KEY = 4
# What each container has of its own, never a template's (nor part of what a template depends on).
CONTAINERS_OWN = frozenset({cenv.CONTAINER_ID, cenv.TOKEN, cenv.SCHEDULER, cenv.READY_FD})
OUTPUT_SOURCE = "snapshot"  # what log lines of a template name as their container


class Snapshots:
    def __init__(
        self,
        pool: TemplatePool,
        directory: Path,
        config: WorkerConfig,
        on_output: Callable[[pb.LogLine], None],
        sandboxes: SandboxLayout | None = None,
    ) -> None:
        self.pool = pool
        self.sandboxes = sandboxes  # each template in its own sandbox; None: on the host
        self.directory = directory  # each template's code bundle, in a folder named by its identity
        self.config = config
        self.on_output = on_output  # what templates print, for the scheduler (the app's logs)
        # Each live key's templates, by identity, least recently used first.
        self._kept: dict[str, collections.OrderedDict[str, None]] = {}
        self._exiting: list[tuple[Callable[[], bool], Path]] = []  # dropped: whether it has exited, its folder

    def clear(self) -> None:
        """Remove every template's folder (at start: what a previous run of the worker left)."""
        shutil.rmtree(self.directory, ignore_errors=True)

    async def template(
        self, command: pb.StartContainer, image: BuiltImage | None, bundle: Callable[[], Awaitable[bytes]]
    ) -> ForkTemplate | None:
        """The running template `command`'s container forks from, made now if there is none;
        None when the worker forks no containers (each then runs every hook itself). Raises
        TemplateError saying why the snapshot could not be made (a snap=True hook raised)."""
        identity = snapshot_identity(command)
        directory = self.directory / identity
        if not directory.exists():
            extract_bundle(await bundle(), directory)
        kept = self._kept.setdefault(command.snapshot_key, collections.OrderedDict())
        kept[identity] = None
        kept.move_to_end(identity)
        while len(kept) > MAX_PER_KEY:
            self._drop(next(iter(kept)), kept)

        def make(socket_path: Path) -> ForkTemplate:
            sandbox = None
            prefix: list[str] = []
            if self.sandboxes is not None:  # its bundle at CODE_DIR
                sandbox = self.sandboxes.template(identity, image, bundle=directory)
            elif image is not None:  # it imports the app inside the image, its bundle where it is here
                prefix, socket_path = image_launch.template_launch(
                    image, self.config.work_dir, identity[-12:], directory
                )
            env = container_environment(command, self.config, image, Path(CODE_DIR) if sandbox else directory)
            return ForkTemplate(
                socket_path,
                image.python if image is not None else sys.executable,
                args=["--snapshot"],
                prefix=prefix,
                env=template_environment(env),
                cwd=directory,
                output=self._output(command),
                # As a container's: its snap=True hooks bound themselves by startup_timeout.
                start_timeout=max(self.config.container_ready_timeout, command.function.startup_timeout + READY_MARGIN),
                name="the memory snapshot's template",
                sandbox=sandbox,
            )

        return await self.pool.snapshot(identity, make, f"{command.app_name}.{command.function.name}")

    def keep(self, live: Iterable[str]) -> None:
        """Drop the templates of keys not in `live`."""
        live = set(live)
        for key in [k for k in self._kept if k not in live]:
            kept = self._kept.pop(key)
            for identity in list(kept):
                self._drop(identity, kept)
        self._remove_exited()

    def _drop(self, identity: str, kept: collections.OrderedDict[str, None]) -> None:
        del kept[identity]
        self._exiting.append((self.pool.retire(identity), self.directory / identity))
        self._remove_exited()

    def _remove_exited(self) -> None:
        for item in [item for item in self._exiting if item[0]()]:
            self._exiting.remove(item)
            shutil.rmtree(item[1], ignore_errors=True)

    def _output(self, command: pb.StartContainer) -> Callable[[str], None]:
        redact = Redactor(secret_values(command.env))

        def emit(text: str) -> None:
            line = pb.LogLine(
                app_id=command.app_id,
                function=command.function.name,
                container_id=OUTPUT_SOURCE,
                time=time.time(),
                text=redact(text),
            )
            self.on_output(line)

        return emit


def snapshot_identity(command: pb.StartContainer) -> str:
    """What a template depends on, hashed: its key, image, code, function and environment (the
    app's secrets and a class's parameters among it), not what is each container's own."""
    digest = hashlib.sha256()
    for part in (command.snapshot_key, command.image_id, command.bundle_hash, command.entry):
        digest.update(part.encode() + b"\0")
    digest.update(command.function.SerializeToString(deterministic=True))
    for name, value in sorted(command.env.items()):
        if name not in CONTAINERS_OWN:
            digest.update(f"\0{name}={value}".encode())
    return f"s{digest.hexdigest()[:15]}"


def template_environment(env: dict[str, str]) -> dict[str, str]:
    """A template's environment, from the environment its containers get (worker/containers.py)."""
    kept = {name: value for name, value in env.items() if name not in CONTAINERS_OWN}
    # No GPU: CUDA initialised in the template could not be used in a fork of it.
    kept["CUDA_VISIBLE_DEVICES"] = ""
    # GNU OpenMP hangs in a fork of a process whose parallel regions ran on several threads;
    # each container sets its own count again (worker/runtime/snapshot.py).
    kept["OMP_NUM_THREADS"] = "1"
    return kept
