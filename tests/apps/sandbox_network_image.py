# On a worker with a container network and no --sandbox-rootfs: a container of an image is in a
# sandbox, on a network of its own; one of the worker's own environment is on the host's.
import socket

import modal

app = modal.App("sandbox-network-image")


def own_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet: the route picks the source address
        return probe.getsockname()[0]


@app.function(image=modal.Image.debian_slim())
@modal.fastapi_endpoint()
def in_image():
    return {"address": own_address()}


@app.function()
@modal.fastapi_endpoint()
def on_host():
    return {"address": own_address()}


@app.function(block_network=True)
@modal.fastapi_endpoint()
def offline_on_host():
    return {"network": "none"}
