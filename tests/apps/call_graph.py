# Spawned calls that call others, cancel and terminate, and the ids of the input a container runs.
import asyncio
import os
import time

import modal

import identity

app = modal.App("call-graph")


@app.function()
def leaf(x):
    return x + 1


@app.function()
def broken(x):
    raise ValueError(f"broken {x}")


@app.function()
def parent(x):
    # Two calls made while this input runs: its children in the call graph.
    ids = {"call": modal.current_function_call_id(), "input": modal.current_input_id()}
    value = leaf.remote(x)
    try:
        broken.remote(x)
    except ValueError:
        pass
    return {"ids": ids, "leaf": value}


@app.function()
def map_parent(n):
    # .map() runs its calls in threads of its own: they are still this input's children.
    return list(leaf.map(range(n)))


@app.function()
async def async_parent(n):
    values = [await leaf.remote.aio(i) for i in range(n)]
    graph = await modal.FunctionCall.from_id(modal.current_function_call_id()).get_call_graph.aio()
    return {"values": values, "children": [c.function_name for c in graph[0].children]}


@app.function()
def ids():
    return {"call": modal.current_function_call_id(), "input": modal.current_input_id()}


@app.function(scaledown_window=300)
async def waits_for_cancel(directory):
    # Records that it started, then that the cancel reached it.
    with open(os.path.join(directory, "started"), "w") as f:
        f.write(identity.pid())
    try:
        await asyncio.sleep(300)
    except asyncio.CancelledError:
        with open(os.path.join(directory, "cancelled"), "w") as f:
            f.write(modal.current_function_call_id() or "")
        raise
    return "not cancelled"


@app.function(scaledown_window=300)
def stuck(directory):
    # A sync function that never ends: only stopping its container stops it.
    with open(os.path.join(directory, "started"), "w") as f:
        f.write(identity.pid())
    while True:
        time.sleep(0.1)
