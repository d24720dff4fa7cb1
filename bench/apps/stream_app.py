# Endpoints for bench/streaming.py: the seed's StreamingResponse example (ten server-sent
# events, with a shorter gap) and a raw ASGI app that moves large bodies both ways.
import os
import time

import modal

app = modal.App("bench-stream")

EVENTS = 10
GAP_SECONDS = 0.05  # the seed sleeps 0.5 s between events
CHUNK = 64 * 1024  # what the raw app hands to each `http.response.body`
OCTETS = b"application/octet-stream"


def event_generator():
    for i in range(EVENTS):
        yield f"data: event {i}\n\n".encode()
        time.sleep(GAP_SECONDS)


@app.function()
@modal.fastapi_endpoint()
def sse():
    from fastapi.responses import StreamingResponse

    return StreamingResponse(event_generator(), media_type="text/event-stream")


async def _json(send, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def bodies(scope, receive, send):
    """GET /pid: the serving process. POST /count: read the body, say how long it was.
    GET /download?size=N: N bytes of b"x", CHUNK at a time."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/pid":
        # Its PID namespace too: in its sandbox it is PID 1 of a namespace of its own.
        namespace = os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
        await _json(send, f'{{"pid": {os.getpid()}, "pid_namespace": "{namespace}"}}'.encode())
    elif scope["path"] == "/count":
        total = 0
        while True:
            message = await receive()
            total += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await _json(send, f'{{"bytes": {total}}}'.encode())
    elif scope["path"] == "/download":
        size = int(scope["query_string"].decode().split("=")[1])
        chunk = b"x" * CHUNK
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", OCTETS)]})
        sent = 0
        while sent < size:
            piece = chunk[: size - sent]
            sent += len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": sent < size})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@app.function()
@modal.concurrent(max_inputs=10)
@modal.asgi_app()
def raw():
    return bodies
