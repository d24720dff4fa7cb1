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
    # Its container's id: in its sandbox its pid is 1, as every container's is.
    return {"container": os.environ["STOKER_CONTAINER_ID"], "start": start, "end": time.time()}
