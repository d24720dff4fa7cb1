"""An app that is a module of a package and imports its siblings both ways."""

import modal
from runpkg import helpers as absolute_helpers

from . import helpers

app = modal.App("run-pkg")


@app.function()
def hello(name: str) -> str:
    assert absolute_helpers is helpers
    return helpers.greet(name)


@app.local_entrypoint()
def main(name: str = "world"):
    print(hello.remote(name), flush=True)
