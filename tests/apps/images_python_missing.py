# An image asking for a Python that no worker has (and stoker never downloads one).
import modal

app = modal.App("images-python-missing")


@app.function(image=modal.Image.debian_slim(python_version="3.4").pip_install("inflection"))
@modal.fastapi_endpoint()
def old():
    return {"never": True}
