# The seed's "POST Requests" example, verbatim under an App.
import modal

app = modal.App("seed-post")
image = modal.Image.debian_slim().pip_install("fastapi[standard]")

@app.function(image=image)
@modal.fastapi_endpoint(method="POST")
def square(item: dict):
    return {"square": item['x']**2}
