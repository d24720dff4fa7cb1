"""The worker's fork-template pool: keyed by image, with the worker's own interpreter as a key, and by memory snapshot.

Unlike the other unit tests these start real template processes (`sys.executable -m
worker.runtime.template`, a second or two each: it imports FastAPI and gRPC), since what is
tested is whether a template process counts as alive.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from worker.template_client import OWN_ENVIRONMENT, ForkTemplate, TemplateError, TemplatePool


async def _until_running(pool: TemplatePool, key: str, python: str) -> ForkTemplate:
    """Ask until the background (re)start of `key` has a running template."""
    for _ in range(300):
        template = await pool.get(key, python)
        if template is not None:
            return template
        await asyncio.sleep(0.1)
    raise AssertionError(f"the template for {key!r} never ran")


def test_one_template_per_key_with_the_worker_interpreter_as_one(tmp_path: Path) -> None:
    async def main() -> None:
        pool = TemplatePool(tmp_path)
        try:
            own = await pool.get(OWN_ENVIRONMENT, sys.executable)
            image = await pool.get("im-0123456789abcdef", sys.executable)
            assert own is not None and own.alive
            assert image is not None and image.alive
            assert own is not image and own.socket_path != image.socket_path
            assert await pool.get(OWN_ENVIRONMENT, sys.executable) is own  # shared, not restarted
            assert await pool.get("im-0123456789abcdef", sys.executable) is image
        finally:
            await pool.stop()
        assert not own.alive and not image.alive
        assert await pool.get(OWN_ENVIRONMENT, sys.executable) is None  # stopped: none started again

    asyncio.run(main())


def test_no_fork_hands_out_no_template(tmp_path: Path) -> None:
    async def main() -> None:
        pool = TemplatePool(tmp_path, enabled=False)
        assert await pool.get(OWN_ENVIRONMENT, sys.executable) is None
        await pool.stop()

    asyncio.run(main())
    assert list(tmp_path.iterdir()) == []


def test_an_interpreter_that_exits_at_once_is_a_template_error(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\nexit 3\n")
    python.chmod(0o755)

    async def main() -> None:
        template = ForkTemplate(tmp_path / "t.sock", str(python))
        with pytest.raises(TemplateError, match="exit code 3"):
            await template.start()
        assert not template.alive
        with pytest.raises(TemplateError, match="did not start"):
            await ForkTemplate(tmp_path / "u.sock", str(tmp_path / "missing")).start()

    asyncio.run(main())


def test_a_template_that_failed_to_start_is_not_alive_and_is_retried(tmp_path: Path) -> None:
    python = tmp_path / "venv-python"  # missing at first, like an image whose venv went away

    async def main() -> None:
        pool = TemplatePool(tmp_path, retry_after=3600)
        try:
            assert await pool.get("im-broken", str(python)) is None
            python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')  # the venv came back
            python.chmod(0o755)
            # Within retry_after of the failed start: containers start fresh, no start is tried.
            assert await pool.get("im-broken", str(python)) is None
            pool.retry_after = 0
            # Past it: a restart begins behind this request, which still starts fresh.
            assert await pool.get("im-broken", str(python)) is None
            template = await _until_running(pool, "im-broken", str(python))
            assert template.alive
        finally:
            await pool.stop()

    asyncio.run(main())


def test_a_template_that_died_is_restarted(tmp_path: Path) -> None:
    async def main() -> None:
        pool = TemplatePool(tmp_path, retry_after=0)
        try:
            first = await pool.get(OWN_ENVIRONMENT, sys.executable)
            assert first is not None and first.process is not None
            first.process.kill()
            await first.process.wait()
            assert not first.alive
            assert await pool.get(OWN_ENVIRONMENT, sys.executable) is None  # fresh meanwhile
            second = await _until_running(pool, OWN_ENVIRONMENT, sys.executable)
            assert second is not first and second.alive
        finally:
            await pool.stop()

    asyncio.run(main())


def test_stopping_the_pool_stops_a_template_still_starting(tmp_path: Path) -> None:
    async def main() -> None:
        pool = TemplatePool(tmp_path)
        waiting = asyncio.create_task(pool.get(OWN_ENVIRONMENT, sys.executable))
        for _ in range(100):  # until the template process runs (it is not ready for a while)
            if _children():
                break
            await asyncio.sleep(0.02)
        assert len(_children()) == 1 and not waiting.done()
        await pool.stop()
        with pytest.raises(asyncio.CancelledError):  # its waiters are cancelled with the start
            await waiting

    asyncio.run(main())
    assert _children() == []


def _children() -> list[int]:
    """This process's running (not zombie) children that are fork templates."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(ppid) == os.getpid() and state != "Z" and b"worker.runtime.template" in argv:
            found.append(int(entry.name))
    return found


def test_a_snapshot_that_failed_gives_its_error_until_retry_after(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho 'the hook raised' >&2\nexit 1\n")  # as a template whose snap hook raised
    python.chmod(0o755)
    made: list[Path] = []

    def make(socket_path: Path) -> ForkTemplate:
        made.append(socket_path)
        return ForkTemplate(socket_path, str(python), output=lambda line: None, name="the memory snapshot")

    async def main() -> None:
        pool = TemplatePool(tmp_path, retry_after=3600)
        try:
            for _ in range(2):  # the second request gets the first failure: no new start
                with pytest.raises(
                    TemplateError, match="the memory snapshot did not start \\(exit code 1\\)\nthe hook raised"
                ):
                    await pool.snapshot("s-broken", make, "app.Model")
            assert len(made) == 1
            pool.retry_after = 0
            with pytest.raises(TemplateError):
                await pool.snapshot("s-broken", make, "app.Model")  # past retry_after: tried anew, waited for
            assert len(made) == 2
        finally:
            await pool.stop()

    asyncio.run(main())


def test_a_retired_template_exits_once_it_has_no_containers(tmp_path: Path) -> None:
    async def main() -> None:
        pool = TemplatePool(tmp_path)
        try:
            template = await pool.snapshot("s-live", lambda path: ForkTemplate(path), "app.Model")
            assert template is not None and template.alive and template.process is not None
            exited = pool.retire("s-live")
            await asyncio.wait_for(template.process.wait(), 30)  # it had no container: it exits at once
            assert exited() and not template.socket_path.exists()
            again = await pool.snapshot("s-live", lambda path: ForkTemplate(path), "app.Model")
            assert again is not None and again is not template  # a retired key starts anew
        finally:
            await pool.stop()

    asyncio.run(main())
