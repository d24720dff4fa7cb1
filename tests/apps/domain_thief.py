# Another app that asks for a custom domain seed_domains.py already holds.
import modal

app = modal.App("domain-thief")


@app.function()
@modal.fastapi_endpoint(custom_domains=["api.example.com"])
def steal():
    return "stolen"
