# The seed's "ASGI Apps" example, verbatim under an App. The seed's snippet uses `Request`
# without showing its import; it is imported here.
import modal
from fastapi import Request

app = modal.App("seed-asgi")

image = modal.Image.debian_slim().pip_install("fastapi[standard]")

@app.function(image=image)
@modal.concurrent(max_inputs=100)
@modal.asgi_app()
def fastapi_app():
    from fastapi import FastAPI
    web_app = FastAPI()

    @web_app.get("/")
    async def root():
        return {"message": "Hello"}

    @web_app.post("/echo")
    async def echo(request: Request):
        body = await request.json()
        return body

    return web_app
