# Functions called from plain Python programs: results, generators, exceptions, a web function.
import asyncio
import os
import time

import modal

import identity

app = modal.App("calls")


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("this exception refuses to be pickled")


@app.function()
def square(x):
    return x * x


@app.function(max_containers=2)
def fail_on(x, bad=()):
    if x in bad:
        raise ValueError(f"input {x} is bad")
    return x


@app.function()
def slow(seconds, value):
    time.sleep(seconds)
    return value


@app.function()
def explode(message):
    def inner():
        raise KeyError(message)

    inner()


@app.function()
def own_timeout():
    raise TimeoutError("the function's own")


@app.function()
def explode_unpicklable():
    raise Unpicklable("cannot travel")


@app.function()
def countdown(n):
    for i in range(n, 0, -1):
        yield i


@app.function()
async def async_count(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield {"i": i, "pid": identity.pid()}


@app.function()
async def async_add(a, b=0):
    await asyncio.sleep(0.01)
    return a + b


@app.function()
@modal.fastapi_endpoint()
def web():
    return "web"


@app.function()
def token_kind():
    # What credential the container was given: never the workspace token.
    return os.environ.get("STOKER_TOKEN", "")[:5]


@app.function()
def credential():
    # The container's own call credential, so a test can check what it is refused.
    return os.environ.get("STOKER_TOKEN", "")


@app.function()
def ticker(path):
    # Appends a line per item it produces: a test reads the file to see when it stopped.
    i = 0
    while True:
        with open(path, "a") as f:
            f.write(f"{i}\n")
        yield i
        i += 1
        time.sleep(0.1)


@app.function()
def die_midway():
    # Not a signal to itself: in its sandbox it is its PID namespace's init, which the kernel
    # keeps from signals sent from inside.
    os._exit(70)


@app.function(min_containers=1)
def pid_after(seconds):
    time.sleep(seconds)
    return identity.pid()


@app.function(max_containers=1)
@modal.concurrent(max_inputs=4)
def overlap(seconds):
    start = time.time()
    time.sleep(seconds)
    return {"pid": identity.pid(), "start": start, "end": time.time()}


@app.function()
@modal.fastapi_endpoint()
async def async_caller(n: int):
    # An async endpoint awaits its calls, leaving its event loop free meanwhile.
    square_of_n = await square.remote.aio(n)
    items = [item async for item in countdown.remote_gen.aio(n)]
    mapped = [value async for value in square.map.aio(range(n))]
    spawned = await square.spawn.aio(n + 1)
    later = await spawned.get.aio(timeout=60)
    return {"square": square_of_n, "items": items, "mapped": mapped, "later": later}


@app.function(max_containers=1)
def sized(n):
    return b"x" * n
