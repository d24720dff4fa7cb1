"""`stoker run` interrupted: the entrypoint waits on a long remote call when Ctrl-C comes."""

import time

import modal

app = modal.App("run-interrupt")


@app.function()
def nap(seconds: float) -> float:
    print("napping", flush=True)
    time.sleep(seconds)
    return seconds


@app.local_entrypoint()
def main(seconds: float = 300):
    print("calling nap", flush=True)
    nap.remote(seconds)
    print("nap returned", flush=True)
