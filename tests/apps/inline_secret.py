# Secret.from_dict and a named secret read from a .env file, seen as environment variables.
import os

import modal

app = modal.App("inline-secret")


@app.function(secrets=[modal.Secret.from_dict({"GREETING": "hi", "EMPTY": None}), modal.Secret.from_name("dotenv")])
@modal.fastapi_endpoint()
def env():
    return {k: os.environ.get(k) for k in ("GREETING", "EMPTY", "DB_URL", "QUOTED")}
