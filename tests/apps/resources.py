# Endpoints for tests/test_placement_resources.py: each request holds its container (the seed's
# defaults: one input at a time) until the test opens a gate, a file in the shared dir.
import time
from pathlib import Path

import modal
import identity

app = modal.App("resources")


@app.function()
@modal.fastapi_endpoint()
def hold(gate: str):
    deadline = time.monotonic() + 120
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return {"pid": identity.pid()}
