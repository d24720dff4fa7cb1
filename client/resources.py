"""Modal's `cpu=` and `memory=`: a number is the request, a `(request, limit)` pair also sets a
hard limit (a CPU quota; memory past which the container is killed). As @app.function(),
@app.cls() and with_options() take them."""

from __future__ import annotations

from typing import Any

from client.exceptions import InvalidError


def cpu_pair(value: Any, where: str) -> tuple[float, float]:
    """(request, limit) in cores from `cpu=value`; limit 0: none."""
    request, limit = _pair(value, "cpu", where, whole=False)
    return float(request), float(limit)


def memory_pair(value: Any, where: str) -> tuple[int, int]:
    """(request, limit) in MiB from `memory=value`; limit 0: none."""
    request, limit = _pair(value, "memory", where, whole=True)
    return int(request), int(limit)


def _pair(value: Any, name: str, where: str, *, whole: bool) -> tuple[float, float]:
    unit = "MiB" if whole else "cores"
    kind = "an integer number of MiB" if whole else "a number of cores"
    shown = f"{where}({name}={value!r})"
    parts = value if isinstance(value, tuple) else (value,)
    if not 1 <= len(parts) <= 2 or not all(_is_number(p, whole) and p > 0 for p in parts):
        raise InvalidError(f"{shown}: {name} must be {kind} (the request) or a (request, limit) pair of them, above 0")
    request, limit = (parts[0], parts[-1]) if len(parts) == 2 else (parts[0], 0)
    if limit and limit < request:
        raise InvalidError(
            f"{shown}: the {name} limit ({limit:g} {unit}) is below the request ({request:g} {unit}); "
            "a limit must be at least the request"
        )
    return request, limit


def _is_number(value: Any, whole: bool) -> bool:
    return not isinstance(value, bool) and isinstance(value, int if whole else int | float)
