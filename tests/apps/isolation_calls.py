# The functions of the isolation_* apps: a web endpoint that calls the others from inside its
# container (.remote(), .spawn(), from_name, a generator, a class, one from a memory snapshot) and
# reports what each container saw (isolation_probe.py); and a @web_server whose server process
# reports what a subprocess of the image sees.
import subprocess

import isolation_probe
import modal

SERVER = """
import http.server, json, sys, google.protobuf, grpc
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"protobuf": google.protobuf.__version__, "grpc": grpc.__version__}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def define(name, pins, pinned, port, python_version=None):
    app = modal.App(name)
    image = modal.Image.debian_slim(python_version=python_version).pip_install(*pins)

    @app.function(image=image)
    def double(x):
        return {"value": 2 * x, **isolation_probe.seen(pinned)}

    @app.function(image=image)
    def count(n):
        yield from range(n)

    @app.cls(image=image, enable_memory_snapshot=True)
    class Snapped:
        @modal.enter(snap=True)
        def load(self):
            self.loaded = isolation_probe.seen(pinned)

        @modal.method()
        def seen(self):
            return {"at_snapshot": self.loaded, "now": isolation_probe.seen(pinned)}

    @app.cls(image=image)
    class Plain:
        @modal.method()
        def triple(self, x):
            return {"value": 3 * x, **isolation_probe.seen(pinned)}

    @app.function(image=image)
    @modal.fastapi_endpoint()
    def report():
        return {
            "here": isolation_probe.seen(pinned),
            "remote": double.remote(21),
            "spawned": double.spawn(5).get(timeout=60)["value"],
            "from_name": modal.Function.from_name(name, "double").remote(2)["value"],
            "stream": list(count.remote_gen(3)),
            "snapped": modal.Cls.from_name(name, "Snapped")().seen.remote(),
            "plain": Plain().triple.remote(4),
            "late_imports": list(isolation_probe.late),
        }

    @app.function(image=image)
    @modal.web_server(port, startup_timeout=60)
    def server():
        subprocess.Popen(["python", "-c", SERVER, str(port)])

    return app
