# A class's @modal.wsgi_app and @modal.web_server methods: both served by the one instance that
# @modal.enter set up, alongside a @modal.method that reads the same state.
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import modal

app = modal.App("class-web")

WEB_SERVER_PORT = 18451


@app.cls(max_containers=1, scaledown_window=300)
@modal.concurrent(max_inputs=8)
class Site:
    @modal.enter()
    def start(self):
        self.entered = f"{os.getpid()}:{id(self)}"
        self.hits = []
        self.lock = threading.Lock()

    def _hit(self, via):
        with self.lock:
            self.hits.append(via)
            return {"entered": self.entered, "via": via, "hits": list(self.hits)}

    @modal.method()
    def state(self):
        return self._hit("method")

    @modal.wsgi_app()
    def wsgi(self):
        def application(environ, start_response):
            body = json.dumps({**self._hit("wsgi"), "path": environ["PATH_INFO"]}).encode()
            start_response("200 OK", [("content-type", "application/json")])
            return [body]

        return application

    @modal.web_server(WEB_SERVER_PORT, startup_timeout=30)
    def server(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({**site._hit("web_server"), "path": self.path}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", WEB_SERVER_PORT), Handler)
        threading.Thread(target=httpd.serve_forever, name="site-server", daemon=True).start()
