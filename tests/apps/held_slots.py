# Endpoints for tests/test_held_slots.py: one container each, so every slot is on it.
import asyncio

import modal
from fastapi import BackgroundTasks

app = modal.App("held-slots")


@app.function(max_containers=1)
@modal.concurrent(max_inputs=2)
@modal.fastapi_endpoint()
async def pair(background: BackgroundTasks, seconds: float = 0.0, after: float = 0.0):
    await asyncio.sleep(seconds)
    if after:
        background.add_task(asyncio.sleep, after)  # runs on after the response went out
    return {"slept": seconds}


@app.function(max_containers=1)
@modal.fastapi_endpoint()
def single():
    return "one at a time"
