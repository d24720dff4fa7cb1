# A memory snapshot in a sandbox: its snap=True hook runs in the template's sandbox, and each
# container forked from there is in a sandbox of its own (hostname, PID 1, root).
import os
import socket
from pathlib import Path

import modal

app = modal.App("sandbox-snapshot")


@app.cls(enable_memory_snapshot=True)
class Snapped:
    @modal.enter(snap=True)
    def build(self):
        self.snapped_on = socket.gethostname()
        self.snapped_pid = os.getpid()
        Path("/tmp/snapped").write_text("in the template's /tmp")

    @modal.fastapi_endpoint()
    def info(self):
        return {
            "snapped_on": self.snapped_on,
            "snapped_pid": self.snapped_pid,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "cwd": os.getcwd(),
            "tmp": sorted(os.listdir("/tmp")),
            "root": sorted(os.listdir("/")),
        }
