# Endpoints that print, raise and leak a secret, for the logs tests.
import os

import modal

app = modal.App("chatty")


@app.function(secrets=[modal.Secret.from_dict({"CHATTY_SECRET": "hush-hush-0451"})])
@modal.fastapi_endpoint()
def say(marker: str = "hello"):
    print(f"said {marker}")
    return {"said": marker}


@app.function(secrets=[modal.Secret.from_dict({"CHATTY_SECRET": "hush-hush-0451"})])
@modal.fastapi_endpoint()
def leak():
    print(f"the secret is {os.environ['CHATTY_SECRET']}!")
    return {"leaked": False}


@app.function()
@modal.fastapi_endpoint()
def fail(marker: str = "x"):
    raise ValueError(f"failing on purpose {marker}")
