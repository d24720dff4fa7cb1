# The seed's "With .map()" example, verbatim (the app object and imports added).
import modal

app = modal.App("seed-map")


@app.function()
def process_segment(i):
    return f"segment {i}\n"

@app.function(image=modal.Image.debian_slim().pip_install("fastapi[standard]"))
@modal.fastapi_endpoint()
def stream_parallel():
    from fastapi.responses import StreamingResponse
    return StreamingResponse(
        process_segment.map(range(10)), media_type="text/plain"
    )
