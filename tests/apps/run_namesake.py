"""Deployed under the name `stoker run run_entry.py` uses, with a different `whoami`."""

import modal

app = modal.App("run-entry")


@app.function()
def square(x: int) -> int:
    return -1


@app.function()
def whoami() -> str:
    return "the deployed namesake"
