# An image with a package the base environment lacks, env vars and a build command.
import importlib.util
import os
import sys

import modal

app = modal.App("images")
image = (
    modal.Image.debian_slim()
    .pip_install("inflection==0.5.1")
    .env({"GREETING": "hello from the image"})
    .run_commands('echo "built by run_commands" > "$VIRTUAL_ENV/marker.txt"')
)


@app.function(image=image)
@modal.fastapi_endpoint()
def info():
    import inflection

    with open(os.path.join(os.environ["VIRTUAL_ENV"], "marker.txt")) as marker:
        built = marker.read().strip()
    return {
        "camel": inflection.camelize("stoker_images"),
        "greeting": os.environ.get("GREETING"),
        "prefix": sys.prefix,
        "marker": built,
    }


@app.function()
@modal.fastapi_endpoint()
def plain():
    return {"prefix": sys.prefix, "has_inflection": importlib.util.find_spec("inflection") is not None}
