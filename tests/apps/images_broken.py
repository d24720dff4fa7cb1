# The `images` app again, now asking for a package that does not exist: its build fails.
import modal

app = modal.App("images")
image = modal.Image.debian_slim().pip_install("stoker-no-such-package-7f3a")


@app.function(image=image)
@modal.fastapi_endpoint()
def info():
    return {"camel": "never"}


@app.function()
@modal.fastapi_endpoint()
def plain():
    return {"prefix": "never"}
