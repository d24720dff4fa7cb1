# One endpoint that says which process served it.
import os

import modal

app = modal.App("warm")


@app.function()
@modal.fastapi_endpoint()
def pid():
    return {"pid": os.getpid()}
