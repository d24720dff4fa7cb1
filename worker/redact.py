"""Hide a container's secret values in what it prints, before the line is logged or forwarded."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from protos import container_env as cenv

MASK = "***"


def secret_values(env: Mapping[str, str]) -> list[str]:
    """The values to hide, from a StartContainer's env.

    The scheduler fills that env with the function's secrets (named ones and `Secret.from_dict`)
    plus stoker's own `STOKER_*` variables; every other value is a secret, and so is
    STOKER_TOKEN, the container's call credential. A multi-line value (a PEM key) is also hidden
    line by line, since output is forwarded line by line."""
    values: set[str] = set()
    for key, value in env.items():
        if (key.startswith(cenv.PREFIX) and key != cenv.TOKEN) or not value:
            continue
        values.add(value)
        values.update(part.strip() for part in value.splitlines() if part.strip())
    return sorted(values)


class Redactor:
    """Replaces every occurrence of any of `values` with `***`, longest first (so a value that
    contains another is hidden whole)."""

    def __init__(self, values: Iterable[str]) -> None:
        ordered = sorted({v for v in values if v}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)
