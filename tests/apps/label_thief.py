# Another app that asks for the label seed_urls.py already holds.
import modal

app = modal.App("label-thief")


@app.function()
@modal.fastapi_endpoint(label="api")
def steal():
    return "stolen"
