# Imports every module alias of Modal's that stoker has, the ways Modal's own examples do.
import modal
import modal.app
import modal.exception
import modal.functions
import modal.image
import modal.partial_function
import modal.secret
from modal.exception import InvalidError, NotFoundError
from modal.functions import Function, FunctionCall
from modal.partial_function import concurrent, fastapi_endpoint

app = modal.app.App("modal-aliases", image=modal.image.Image.debian_slim())


@app.function(secrets=[modal.secret.Secret.from_dict({"ALIASES": "on"})])
@concurrent(max_inputs=2)
@fastapi_endpoint()
def same():
    import os

    try:
        modal.Volume  # noqa: B018
        refused = ""
    except InvalidError as exc:
        refused = str(exc)
    return {
        "same": [
            Function is modal.Function,
            FunctionCall is modal.FunctionCall,
            modal.functions.Function is modal.Function,
            NotFoundError is modal.NotFoundError,
            modal.exception.Error is modal.Error,
            modal.partial_function.fastapi_endpoint is modal.fastapi_endpoint,
        ],
        "secret": os.environ.get("ALIASES"),
        "refused": refused,
    }
