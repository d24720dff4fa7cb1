# Memory snapshots: the module's import and the @modal.enter(snap=True) hooks run once per worker
# in a template process, which each container forks from. Every process that imports the module
# or runs a hook appends a line to $HOME/snapshot-events.log, so a test sees which ran where.
import os
import time

import modal

app = modal.App("snapshots")
VERSION = "first"


def record(event, *details):
    with open(os.path.join(os.environ["HOME"], "snapshot-events.log"), "a") as log:
        log.write(" ".join([event, str(os.getpid()), str(os.getppid()), *map(str, details)]) + "\n")


record("import", VERSION)


@app.cls(enable_memory_snapshot=True, secrets=[modal.Secret.from_dict({"SNAPSHOT_SECRET": "s3cret"})])
class Model:
    size: str = modal.parameter(default="small")

    @modal.enter(snap=True)
    def build(self):
        record("snap", self.size)
        self.weights = {"small": 2, "large": 10}[self.size]
        self.built_by = os.getpid()
        self.secret_seen = os.environ.get("SNAPSHOT_SECRET")
        self.gpus_seen = os.environ.get("CUDA_VISIBLE_DEVICES")

    @modal.enter()
    def warm(self):
        record("enter", self.size)
        self.entered_by = os.getpid()

    @modal.method()
    def predict(self, x, hold=0.0):
        time.sleep(hold)  # held, so that concurrent calls need containers of their own
        return {
            "y": x * self.weights,
            "version": VERSION,
            "built_by": self.built_by,
            "entered_by": self.entered_by,
            "pid": os.getpid(),
            "secret_seen": self.secret_seen,
            "gpus_seen": self.gpus_seen,
            "template_environ": _environ(os.getppid()),
        }


def _environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return sorted(item.split(b"=", 1)[0].decode() for item in f.read().split(b"\0") if item)


@app.cls(enable_memory_snapshot=True)
class Broken:
    @modal.enter(snap=True)
    def load(self):
        record("broken")
        raise RuntimeError("the snapshot's weights are missing")

    @modal.method()
    def predict(self):
        return "never"

    @modal.fastapi_endpoint()
    def web(self):
        return "never"


@app.cls(enable_memory_snapshot=True, startup_timeout=2)
class Slow:
    @modal.enter(snap=True)
    def load(self):
        time.sleep(3600)  # a sync hook past its timeout cannot be stopped: its template exits anyway

    @modal.method()
    def predict(self):
        return "never"


@app.cls(enable_memory_snapshot=True)
class Caller:
    @modal.enter(snap=True)
    def call_out(self):
        try:
            Model().predict.remote(1)
            self.outcome = "called"
        except Exception as exc:
            self.outcome = f"{type(exc).__name__}: {exc}"

    @modal.method()
    def refused(self):
        return self.outcome


@app.function(enable_memory_snapshot=True)
@modal.fastapi_endpoint()
def hello():
    return {"version": VERSION, "pid": os.getpid(), "template": os.getppid()}
