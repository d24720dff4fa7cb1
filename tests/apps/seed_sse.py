# The seed's "Streaming Responses" example, verbatim, and a ticker that shows when its work stops.
import time

import modal

app = modal.App("seed-sse")


def event_generator():
    for i in range(10):
        yield f"data: event {i}\n\n".encode()
        time.sleep(0.5)


@app.function(image=modal.Image.debian_slim().pip_install("fastapi[standard]"))
@modal.fastapi_endpoint()
def stream():
    from fastapi.responses import StreamingResponse
    return StreamingResponse(
        event_generator(), media_type="text/event-stream"
    )


@app.function()
@modal.fastapi_endpoint()
def ticker(path: str):
    from fastapi.responses import StreamingResponse

    def ticks():
        for i in range(1200):  # a minute at most, should nobody ever disconnect
            with open(path, "w") as f:
                f.write(str(i))
            yield f"data: tick {i}\n\n".encode()
            time.sleep(0.05)

    return StreamingResponse(ticks(), media_type="text/event-stream")
