# with_options() and with_concurrency(): a class and functions whose calls, given other options,
# run in pools of their own; each says which container it is, what GPUs and secrets it got, and
# how many of its inputs ran at once. And the same from inside the app.
import os
import threading
import time

import modal

app = modal.App("options")

_seen = threading.Barrier(4)  # per container: passed once 4 inputs run in it at the same time


def _where() -> dict:
    return {
        "container": os.environ.get("STOKER_CONTAINER_ID"),
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES") or None,
        "token": os.environ.get("OPTION_TOKEN"),
    }


@app.cls(cpu=1.0, max_containers=1, scaledown_window=60)
class Model:
    @modal.method()
    def where(self):
        return _where()

    @modal.method()
    def together(self):
        """Wait until 4 inputs run in this container at once (BrokenBarrierError if they never do)."""
        _seen.wait(timeout=20)
        return _where()

    @modal.fastapi_endpoint()
    def web(self):
        return _where()


@app.function(max_containers=1, scaledown_window=60)
def where():
    return _where()


@app.function(timeout=60)
def sleepy(seconds: float):
    time.sleep(seconds)
    return "woke"


@app.function()
@modal.fastapi_endpoint()
def inside():
    # The app's own class and function, given options from one of its containers.
    variant = Model.with_options(max_containers=1).with_concurrency(max_inputs=2)
    return {
        "base": Model().where.remote(),
        "variant": variant().where.remote(),
        "fn": where.with_options(env={"OPTION_TOKEN": "inside"}).remote(),
    }
