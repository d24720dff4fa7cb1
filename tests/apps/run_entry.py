"""`stoker run`: a local entrypoint with typed parameters calling a function of its app, and
functions run on their own (`run_entry.py::square`)."""

import sys

import modal

app = modal.App("run-entry")


@app.function()
def square(x: int) -> int:
    return x * x


@app.function()
def whoami() -> str:
    return "the ephemeral run"


@app.local_entrypoint()
def main(
    x: int, label: str = "square", shout: bool = False, ratio: float = 1.0, exit_code: int = 0, fail: bool = False
):
    text = f"{label}({x}) = {square.remote(x)}; whoami: {whoami.remote()}; ratio {ratio * 2}"
    print(text.upper() if shout else text, flush=True)
    if fail:
        raise RuntimeError("the entrypoint failed on purpose")
    if exit_code:
        sys.exit(exit_code)
