# Images asking for Pythons Debian's bookworm lacks: one the test machine has (pyenv's 3.12), copied
# into the image, and one no worker has (and stoker never downloads one).
import os
import sys

import modal

app = modal.App("images-python")


image = (
    modal.Image.debian_slim(python_version="3.12")
    .pip_install("inflection==0.5.1")
    .env({"IMAGES_TEST_RUN": os.environ.get("IMAGES_TEST_RUN", "")})  # a new image per test run
)


@app.function(image=image)
@modal.fastapi_endpoint()
def py312():
    import inflection

    return {"version": list(sys.version_info[:2]), "executable": sys.executable, "camel": inflection.camelize("a_b")}
