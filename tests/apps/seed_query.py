# The seed's "Query Parameters" example, verbatim under an App.
import modal

app = modal.App("seed-query")
image = modal.Image.debian_slim().pip_install("fastapi[standard]")

@app.function(image=image)
@modal.fastapi_endpoint()
def square(x: int):
    return {"square": x**2}
