# The seed's "Pydantic Models" example, verbatim under an App.
import modal

app = modal.App("seed-pydantic")

from pydantic import BaseModel

class Item(BaseModel):
    name: str
    qty: int = 42

@app.function()
@modal.fastapi_endpoint(method="POST")
def process(item: Item):
    return {"processed": item.name, "quantity": item.qty}
