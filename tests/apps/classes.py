# Classes written the way Modal's examples write them: a model loaded in @modal.enter, methods
# called remotely, a method endpoint and a web UI on the same instance, @modal.concurrent on the
# class, parameters that make pools of their own, an @modal.exit hook; and a class whose enter fails.

import modal

import identity

app = modal.App("classes")


@app.cls(max_containers=1, scaledown_window=300)
@modal.concurrent(max_inputs=4)
class Model:
    size: str = modal.parameter(default="small")
    scale: int = modal.parameter(default=1)

    @modal.enter()
    def load(self):
        self.hooks.append("load")
        self.weights = {"small": 2, "large": 10}[self.size] * self.scale
        print(f"loaded the {self.size} model", flush=True)

    @modal.enter(snap=True)
    def prepare(self):
        # Declared after load, run before it: snap=True hooks come first.
        self.hooks = ["prepare"]

    @modal.method()
    def predict(self, x, offset=0):
        return {"y": x * self.weights + offset, "pid": identity.pid(), "size": self.size, "hooks": self.hooks}

    @modal.method()
    def stream(self, n):
        for i in range(n):
            yield i * self.weights

    @modal.method()
    async def apredict(self, x):
        return x * self.weights

    @modal.fastapi_endpoint()
    def web(self, x: int = 1):
        return {"y": x * self.weights, "pid": identity.pid()}

    @modal.asgi_app()
    def ui(self):
        from fastapi import FastAPI

        ui = FastAPI()

        @ui.get("/")
        def page():
            return {"page": f"model of size {self.size}", "pid": identity.pid()}

        return ui

    @modal.exit()
    def unload(self):
        print(f"unloading the {self.size} model", flush=True)


@app.cls()
class Broken:
    @modal.enter()
    def load(self):
        raise RuntimeError("the weights file is missing")

    @modal.method()
    def predict(self):
        return "never"

    @modal.fastapi_endpoint()
    def web(self):
        return "never"


@app.function()
@modal.fastapi_endpoint()
def relay(x: int):
    # Inside the app: the class by its own name, as app code calls it.
    return {"small": Model().predict.remote(x)["y"], "large": Model(size="large").predict.remote(x)["y"]}
