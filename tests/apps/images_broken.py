# The `images` app again, now with a build step that fails: the deploy fails, the old version serves on.
import modal

app = modal.App("images")
image = modal.Image.debian_slim().apt_install("jq").run_commands("echo about to fail; exit 3")


@app.function(image=image)
@modal.fastapi_endpoint()
def info():
    return {"camel": "never"}


@app.function()
@modal.fastapi_endpoint()
def plain():
    return {"prefix": "never"}
