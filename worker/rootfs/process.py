"""Run one build command, passing its output on line by line; its error ends with its last lines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

ERROR_TAIL_LINES = 25

Output = Callable[[str], None]


class ImageBuildError(Exception):
    """The image could not be built; the message carries the failing step's own output."""


async def run(
    argv: list[str],
    emit: Output | None,
    *,
    env: dict[str, str],
    cwd: Path | None = None,
    stdin: bytes | None = None,
    what: str = "",
) -> str:
    """Run `argv`, each line of its output to `emit` (None: a probe, kept quiet); its output, or
    ImageBuildError naming `what` (default: the command) with the output's last lines."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=cwd,
        start_new_session=True,  # a timeout or cancel stops the whole step
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        if stdin is not None:
            assert process.stdin is not None
            feeding = asyncio.ensure_future(_feed(process.stdin, stdin))
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            if emit is not None:
                emit(line)
        code = await process.wait()
        if stdin is not None:
            await feeding
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise
    if code != 0:
        step = what or " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv))
        raise ImageBuildError(f"`{step}` failed with exit code {code}:\n" + "\n".join(lines[-ERROR_TAIL_LINES:]))
    return "\n".join(lines)


async def _feed(pipe: asyncio.StreamWriter, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        pipe.write(data)
        await pipe.drain()
        pipe.close()
