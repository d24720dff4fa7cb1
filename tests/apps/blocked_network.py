# A web function that asks for no network of its own (Modal's block_network=True).
import modal

app = modal.App("blocked-network")


@app.function(block_network=True)
@modal.fastapi_endpoint()
def offline():
    return {"network": "none"}
