# Endpoints that show how containers behave: which process served, failures, slowness.

import modal

import identity

app = modal.App("behaviour")


@app.function(scaledown_window=2)
@modal.fastapi_endpoint()
def pid():
    return {"pid": identity.pid()}


@app.function()
@modal.fastapi_endpoint()
def boom(fail: bool = True):
    if fail:
        raise RuntimeError("boom on purpose")
    return {"pid": identity.pid()}
