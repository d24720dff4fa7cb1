# The seed's proxy-auth example, with requires_proxy_auth set, and an endpoint that shows
# which headers reached the app.
import modal

app = modal.App("protected")


@app.function()
@modal.fastapi_endpoint(requires_proxy_auth=True)
def protected():
    return "authenticated!"


@app.function()
@modal.asgi_app(requires_proxy_auth=True)
def headers():
    async def application(scope, receive, send):
        names = sorted(name.decode() for name, _ in scope["headers"])
        body = ",".join(names).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return application
