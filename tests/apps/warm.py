# One endpoint that says which process served it.

import modal

import identity

app = modal.App("warm")


@app.function()
@modal.fastapi_endpoint()
def pid():
    return {"pid": identity.pid()}
