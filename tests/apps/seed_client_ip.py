# The seed's "Client IP Address" example, verbatim under an App.
import modal

app = modal.App("seed-client-ip")

from fastapi import Request

@app.function()
@modal.fastapi_endpoint()
def get_ip(request: Request):
    return f"Your IP: {request.client.host}"
