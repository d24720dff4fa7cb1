# The endpoint for bench/warm_path.py: the quickstart's `hello`, kept in one warm container that
# takes every concurrent request, as the bare uvicorn it is compared with does. (By default each
# concurrent input would get a container of its own.)
import modal

app = modal.App("bench-warm")


@app.function(min_containers=1, max_containers=1)
@modal.concurrent(max_inputs=256)
@modal.fastapi_endpoint()
def hello():
    return "Hello world!"
