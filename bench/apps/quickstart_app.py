# The seed's Quick Start, verbatim (bench/warm_path.py's "stoker quickstart" variant): no
# @concurrent, so each container takes one request at a time, and no min_containers.
import modal

app = modal.App("bench-quickstart")
image = modal.Image.debian_slim().pip_install("fastapi[standard]")


@app.function(image=image)
@modal.fastapi_endpoint()
def hello():
    return "Hello world!"
