# The seed's "Custom Labels" and "Programmatic URL Retrieval" examples, verbatim.
import modal

app = modal.App("seed-urls")


@app.function()
@modal.fastapi_endpoint(label="api")
def handler():
    ...


@app.function()
@modal.fastapi_endpoint()
def my_endpoint():
    url = my_endpoint.get_web_url()
    return {"url": url}
