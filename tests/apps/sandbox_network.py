# Containers on a network of their own (tests/test_sandbox_network.py): two @web_server replicas
# on one port, endpoints that tell their own address and try connections, one with no network.
import socket
import subprocess

import modal

app = modal.App("sandbox-network")

# Each replica's server names its container and its own address.
SERVER = """
import http.server, os, socket

def own_address():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet: the route picks the source address
        return probe.getsockname()[0]

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{socket.gethostname()} {own_address()}".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""


def own_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet: the route picks the source address
        return probe.getsockname()[0]


def try_connect(host: str, port: int) -> str:
    try:
        with socket.create_connection((host, port), timeout=2) as conn:
            conn.settimeout(2)
            return "ok " + conn.recv(256).decode().strip()
    except OSError as exc:
        return f"failed {type(exc).__name__}"


def probe(host: str, port: int) -> dict:
    return {
        "hostname": socket.gethostname(),
        "address": own_address(),
        "connect": try_connect(host, port) if host else "",
    }


@app.function()
@modal.web_server(8000, startup_timeout=60)
def replica_a():
    subprocess.Popen(["python", "-c", SERVER])


@app.function()
@modal.web_server(8000, startup_timeout=60)
def replica_b():
    subprocess.Popen(["python", "-c", SERVER])


@app.function()
@modal.fastapi_endpoint()
def online(host: str = "", port: int = 0):
    return probe(host, port)


@app.function(block_network=True)
@modal.fastapi_endpoint()
def offline(host: str = "", port: int = 0):
    return probe(host, port)


@app.function()
def double(x: int) -> int:
    return 2 * x


@app.function()
@modal.fastapi_endpoint()
def caller(x: int = 21):
    return {"doubled": double.remote(x)}


@app.cls(enable_memory_snapshot=True)
class Snapped:
    @modal.enter(snap=True)
    def remember(self):
        self.snapped_address = own_address()  # in the snapshot's template

    @modal.fastapi_endpoint()
    def info(self):
        return {**probe("", 0), "snapped_address": self.snapped_address}


@app.function()
@modal.fastapi_endpoint()
def resolve(name: str):
    try:
        return {"address": socket.gethostbyname(name)}
    except OSError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
