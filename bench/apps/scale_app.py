# The endpoint for bench/scale_out.py: one input per container (the default), at most 50
# containers, each request holding its container for `seconds`.
import os
import time

import modal

app = modal.App("bench-scale")


@app.function(max_containers=50)
@modal.fastapi_endpoint()
def hold(seconds: float = 1.0):
    start = time.time()
    time.sleep(seconds)
    return {"pid": os.getpid(), "start": start, "end": time.time()}
