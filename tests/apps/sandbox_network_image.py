# On a worker with a container network: every container is in a sandbox on a network of its own,
# one of an image and one of the worker's own environment (rooted in the default root) alike.
import socket

import modal

app = modal.App("sandbox-network-image")


def own_address():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet: the route picks the source address
        return probe.getsockname()[0]


@app.function(image=modal.Image.debian_slim())
@modal.fastapi_endpoint()
def in_image():
    return {"address": own_address()}


@app.function()
@modal.fastapi_endpoint()
def no_image():
    return {"address": own_address()}

