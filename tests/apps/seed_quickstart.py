# The seed's Quick Start, verbatim under an App.
import modal

app = modal.App("seed-quickstart")

image = modal.Image.debian_slim().pip_install("fastapi[standard]")

@app.function(image=image)
@modal.fastapi_endpoint()
def hello():
    return "Hello world!"
