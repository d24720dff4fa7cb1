# Endpoints for scheduling tests: each says which process served it and when.
import os
import time

import modal

import identity

app = modal.App("scaling")


def _visit(seconds: float) -> dict:
    start = time.time()
    time.sleep(seconds)
    return {"pid": identity.pid(), "start": start, "end": time.time()}


@app.function(max_containers=1)
@modal.fastapi_endpoint()
def single(seconds: float = 0.5):
    return _visit(seconds)


@app.function(max_containers=20)
@modal.fastapi_endpoint()
def wide(seconds: float = 1.0):
    return _visit(seconds)


@app.function(min_containers=2)
@modal.fastapi_endpoint()
def kept():
    return {"pid": identity.pid()}


@app.function(buffer_containers=1)
@modal.fastapi_endpoint()
def buffered(seconds: float = 2.0):
    return _visit(seconds)


@app.function()
@modal.fastapi_endpoint()
def crash(now: bool = True):
    if now:
        os._exit(3)
    return {"pid": identity.pid()}


@app.function(min_containers=1)
@modal.fastapi_endpoint()
def survivor():
    return {"pid": identity.pid()}


@app.function(max_containers=1)
@modal.concurrent(max_inputs=60)
@modal.fastapi_endpoint()
def many(seconds: float = 1.0):
    return _visit(seconds)
