# An image that begins as tests/apps/images.py's does: its first layers are that image's.
import os
import subprocess
from pathlib import Path

import modal

app = modal.App("images-shared")
image = (
    modal.Image.debian_slim()
    .apt_install("jq")
    .pip_install("inflection==0.5.1")
    .run_commands("echo other > /etc/other")
    .env({"IMAGES_TEST_RUN": os.environ.get("IMAGES_TEST_RUN", "")})  # a new image per test run
)


@app.function(image=image)
@modal.fastapi_endpoint()
def shared():
    jq = subprocess.run(["jq", "-n", "2 * 3"], capture_output=True, text=True, check=True)
    return {"jq": jq.stdout.strip(), "other": Path("/etc/other").read_text().strip()}
