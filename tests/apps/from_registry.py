"""Functions in images pulled from a registry: by the registry's own address, through the worker's
Docker Hub mirror, and with a worker's Python added to an image that has none."""

import os
import sys

import modal

app = modal.App("from-registry")
REGISTRY = os.environ.get("TEST_REGISTRY", "unset")  # read where the app is deployed from

direct = modal.Image.from_registry(f"{REGISTRY}/debian/python:bookworm")
mirrored = modal.Image.from_registry("debian/python:bookworm")  # docker.io/debian/python, via the mirror
added = modal.Image.from_registry(f"{REGISTRY}/debian/no-python:bookworm", add_python="3.11")


def describe() -> dict[str, object]:
    with open("/usr/local/share/marker") as marker:
        return {
            "marker": marker.read().strip(),
            "from_config": os.environ.get("IMAGE_GREETING", ""),
            "python": sys.executable,
            "version": list(sys.version_info[:2]),
        }


@app.function(image=direct)
@modal.fastapi_endpoint()
def pulled() -> dict[str, object]:
    return describe()


@app.function(image=mirrored)
@modal.fastapi_endpoint()
def through_mirror() -> dict[str, object]:
    return describe()


@app.function(image=added)
@modal.fastapi_endpoint()
def with_added_python() -> dict[str, object]:
    return describe()
