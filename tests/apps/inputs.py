# timeout=, retries= and startup_timeout= on functions, web endpoints and classes. Attempts are
# counted in a file whose path the test passes: one line per attempt, with when it began.
import asyncio
import os
import time

import modal

app = modal.App("inputs")


def _attempt(path):
    """Record this attempt; return its number (1 for the first)."""
    with open(path, "a") as f:
        f.write(f"{time.monotonic()}\n")
    with open(path) as f:
        return len(f.read().splitlines())


def _container():
    return os.environ["STOKER_CONTAINER_ID"]


# ---------------------------------------------------------------- timeout=


@app.function(timeout=1)
async def slow_async(seconds):
    await asyncio.sleep(seconds)
    return _container()


@app.function(timeout=1)
def slow_sync(seconds):
    time.sleep(seconds)
    return _container()


@app.function(timeout=1)
@modal.fastapi_endpoint()
async def slow_web(seconds: float = 0):
    await asyncio.sleep(seconds)
    return {"container": _container()}


@app.function(timeout=1)
@modal.fastapi_endpoint()
def slow_web_sync(seconds: float = 0):
    time.sleep(seconds)
    return {"container": _container()}


@app.function(timeout=1)
@modal.asgi_app()
def slow_stream():
    from fastapi import FastAPI, WebSocket
    from fastapi.responses import StreamingResponse

    web = FastAPI()

    @web.get("/")
    async def stream(seconds: float = 0):
        async def chunks():
            yield b"first chunk\n"
            await asyncio.sleep(seconds)
            yield b"last chunk\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    @web.websocket("/ws")
    async def socket(ws: WebSocket):
        await ws.accept()
        await ws.send_text("accepted")
        await asyncio.sleep(30)

    return web


@app.cls(timeout=1)
class Slow:
    @modal.method()
    async def wait(self, seconds):
        await asyncio.sleep(seconds)
        return "done"


# ---------------------------------------------------------------- retries=


@app.function(retries=modal.Retries(max_retries=2, backoff_coefficient=5.0, initial_delay=0.2, max_delay=1.0))
def flaky(path, failures):
    attempt = _attempt(path)
    if attempt <= failures:
        raise RuntimeError(f"attempt {attempt} fails")
    return attempt


@app.function(retries=1)
def flaky_once(path, failures):
    attempt = _attempt(path)
    if attempt <= failures:
        raise RuntimeError(f"attempt {attempt} fails")
    return attempt


@app.function(retries=modal.Retries(max_retries=1, initial_delay=0.0))
def dies_first(path):
    if _attempt(path) == 1:
        os._exit(3)  # the container dies under the call
    return "survived"


@app.function(retries=modal.Retries(max_retries=1, initial_delay=0.0))
def flaky_gen(path):
    attempt = _attempt(path)
    for i in range(4):
        if attempt == 1 and i == 2:
            raise RuntimeError("the first run fails after two items")
        yield i


@app.cls(retries=modal.Retries(max_retries=1, initial_delay=0.0))
class Flaky:
    @modal.method()
    def once(self, path):
        attempt = _attempt(path)
        if attempt == 1:
            raise RuntimeError("the first attempt fails")
        return attempt


@app.function(retries=2)
@modal.fastapi_endpoint()
def flaky_web(path: str):
    _attempt(path)
    raise RuntimeError("web requests are not retried")


# ---------------------------------------------------------------- startup_timeout=


@app.cls(startup_timeout=1, max_containers=1)
class SlowStart:
    @modal.enter()
    def load(self):
        time.sleep(60)

    @modal.method()
    def predict(self):
        return "never"

    @modal.fastapi_endpoint()
    def web(self):
        return {"never": True}
