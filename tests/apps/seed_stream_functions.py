# The seed's "Streaming from Modal Functions" example, verbatim (the app object and imports added).
import time

import modal

app = modal.App("seed-stream-functions")


@app.function(gpu="any")
def process_gpu():
    for i in range(10):
        yield f"data: result {i}\n\n".encode()
        time.sleep(1)

@app.function(image=modal.Image.debian_slim().pip_install("fastapi[standard]"))
@modal.fastapi_endpoint()
def hook():
    from fastapi.responses import StreamingResponse
    return StreamingResponse(
        process_gpu.remote_gen(), media_type="text/event-stream"
    )
