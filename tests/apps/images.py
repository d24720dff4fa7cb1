# An image that uses every kind of step: Debian packages, pip and uv inside the image, a
# requirements file, a pyproject file, commands run as root inside it, env, workdir and local files.
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import modal

FILES = Path(__file__).parent / "images_files"

app = modal.App("images")
image = (
    modal.Image.debian_slim()
    .apt_install("jq")
    .pip_install("inflection==0.5.1")
    .uv_pip_install("six==1.16.0")
    .pip_install_from_requirements(str(FILES / "requirements.txt"))
    .pip_install_from_pyproject(str(FILES / "pyproject.toml"))
    .run_commands("echo built by run_commands > /etc/marker", "id -u > /etc/marker-uid")
    .env({"GREETING": "hello from the image"})
    .workdir("/srv/work")
    .add_local_file(FILES / "greeting.txt", "/data/greeting.txt")
    .add_local_dir(FILES / "dir", "/data/dir", ignore=["*.skip"])
    .add_local_python_source("images_helper")
    # A new image per test run (its layers reused): the run's build output shows every step.
    .env({"IMAGES_TEST_RUN": os.environ.get("IMAGES_TEST_RUN", "")})
)


@app.function(image=image)
@modal.fastapi_endpoint()
def info():
    import humanize
    import images_helper
    import inflection
    import six
    import tabulate

    jq = subprocess.run(["jq", "-n", "1 + 2"], capture_output=True, text=True, check=True)
    pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True)
    return {
        "jq": jq.stdout.strip(),
        "pip": pip.stdout,
        "camel": inflection.camelize("stoker_images"),
        "six": six.__version__,
        "humanize": humanize.intcomma(1234567),
        "tabulate": tabulate.__version__,
        "marker": Path("/etc/marker").read_text().strip(),
        "marker_uid": Path("/etc/marker-uid").read_text().strip(),
        "greeting": os.environ.get("GREETING"),
        "cwd": os.getcwd(),
        "file": Path("/data/greeting.txt").read_text().strip(),
        "dir": sorted(str(p.relative_to("/data/dir")) for p in Path("/data/dir").rglob("*")),
        "helper": images_helper.VALUE,
        "executable": sys.executable,
        "os_release": Path("/etc/os-release").read_text(),
    }


@app.function()
@modal.fastapi_endpoint()
def plain():
    return {"prefix": sys.prefix, "has_inflection": importlib.util.find_spec("inflection") is not None}
