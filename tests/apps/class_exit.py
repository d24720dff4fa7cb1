# @modal.exit hooks and what stops their containers. Each test picks a pool of its own by the
# `tag` parameter, and finds its hook's lines in the logs by it.
import os
import time

import modal

import identity

app = modal.App("class-exit")


@app.cls(scaledown_window=300)
class Hooked:
    tag: str = modal.parameter(default="default")  # the web method's instance has this one

    @modal.enter()
    def start(self):
        print(f"entered {self.tag} in {identity.pid()}", flush=True)

    @modal.method()
    def pid(self):
        return identity.pid()

    @modal.fastapi_endpoint()
    def web(self):
        return {"pid": identity.pid()}

    @modal.exit()
    def stop(self):
        print(f"exit hook of {self.tag} started", flush=True)
        time.sleep(1)  # some work that takes a while: the stop must leave it the time
        print(f"exit hook of {self.tag} finished", flush=True)


@app.cls(scaledown_window=2)
class Brief:
    tag: str = modal.parameter(default="")

    @modal.method()
    def pid(self):
        return identity.pid()

    @modal.exit()
    def stop(self):
        print(f"exit hook of {self.tag} ran after scale-down", flush=True)


@app.cls(scaledown_window=300)
class Stuck:
    @modal.method()
    def pid(self):
        return identity.pid()

    @modal.exit()
    def first(self):
        print("the stuck exit hook started", flush=True)
        time.sleep(3600)

    @modal.exit()
    async def second(self):
        print("never: the first hook used up the bound", flush=True)
