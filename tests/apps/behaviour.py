# Endpoints that show how containers behave: which process served, failures, slowness.
import os

import modal

app = modal.App("behaviour")


@app.function(scaledown_window=2)
@modal.fastapi_endpoint()
def pid():
    return {"pid": os.getpid()}


@app.function()
@modal.fastapi_endpoint()
def boom(fail: bool = True):
    if fail:
        raise RuntimeError("boom on purpose")
    return {"pid": os.getpid()}
