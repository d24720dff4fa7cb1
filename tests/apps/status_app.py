# An endpoint that holds its input until the test says so, so `stoker status` can see it in flight.
import asyncio
import os

import modal

app = modal.App("status-app")


@app.function()
@modal.concurrent(max_inputs=2)
@modal.fastapi_endpoint()
async def hold(until: str = ""):
    # Returns once the file `until` exists (or at once without one); never longer than 30 s.
    for _ in range(600):
        if not until or os.path.exists(until):
            break
        await asyncio.sleep(0.05)
    return {"pid": os.getpid()}
