# The seed's "Custom Domains" examples: one exact domain, several, and a wildcard.
import modal

app = modal.App("seed-domains")


@app.function()
@modal.fastapi_endpoint(custom_domains=["api.example.com"])
def hello(message: str):
    return {"message": f"hello {message}"}


@app.function()
@modal.fastapi_endpoint(custom_domains=["api.example.net", "api.example.org"])
def several():
    return "several"


@app.function()
@modal.fastapi_endpoint(custom_domains=["*.example.com"])
def wildcard():
    return "wildcard"
