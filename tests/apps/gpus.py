# GPU functions: each says which devices it was given.
import os

import modal

import identity

app = modal.App("gpus")


def _devices() -> dict:
    return {"cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "pid": identity.pid()}


@app.function(gpu="A10G", scaledown_window=2)
@modal.fastapi_endpoint()
def first():
    return _devices()


@app.function(gpu="A10G", scaledown_window=2)
@modal.fastapi_endpoint()
def second():
    return _devices()


@app.function(gpu="H100:2")
@modal.fastapi_endpoint()
def pair():
    return _devices()


@app.function(gpu="any")
@modal.fastapi_endpoint()
def anything():
    return _devices()
