"""Output of the processes the worker starts for apps (containers, snapshot templates), line by line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def forward_lines(reader: asyncio.StreamReader, emit: Callable[[str], None]) -> None:
    """Each line `reader` gives, decoded and without its line ending, to `emit`, until EOF."""
    while True:
        try:
            raw = await reader.readline()
        except ValueError:  # longer than the reader's limit: consumed, not shown
            raw = b"[stoker] a line over 64 KiB was cut"
        if not raw:
            return
        emit(raw.decode(errors="replace").rstrip())
