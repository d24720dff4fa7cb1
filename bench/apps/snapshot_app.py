# The app for bench/memory_snapshot.py: a module that imports torch (the CPU build) and a class
# whose @modal.enter(snap=True) hook builds and warms up a model (about 2 s here), served by a web
# method. The same class twice: `Snapshotted` with enable_memory_snapshot=True, `Plain` without
# (each of its containers imports torch and builds the model itself). The endpoint runs the
# model's first layer, and an op that OpenMP runs in parallel, in each container.
import os
import time

import modal
import torch

app = modal.App("bench-snapshot")
LAYERS = int(os.environ.get("BENCH_SNAPSHOT_LAYERS", "32"))
WIDTH = 2048


def build_model() -> torch.nn.Module:
    torch.manual_seed(0)
    layers = [m for _ in range(LAYERS) for m in (torch.nn.Linear(WIDTH, WIDTH), torch.nn.GELU())]
    model = torch.nn.Sequential(*layers).eval()
    with torch.no_grad():
        for _ in range(3):  # warm-up passes, as serving code does before taking traffic
            model(torch.randn(64, WIDTH))
    return model


def served_class(name: str) -> type:
    """The class both variants serve, under its own name."""

    class Served:
        @modal.enter(snap=True)
        def load(self):
            began = time.perf_counter()
            self.model = build_model()
            self.build_seconds = time.perf_counter() - began

        @modal.fastapi_endpoint()
        def predict(self):
            with torch.no_grad():
                y = self.model[0](torch.ones(1, WIDTH)).sum()
                y += torch.nn.functional.gelu(torch.ones(1 << 16)).sum()  # one op OpenMP runs in parallel
            return {"y": float(y), "build_seconds": self.build_seconds, "pid": os.getpid()}

    Served.__name__ = Served.__qualname__ = name
    return Served


Snapshotted = app.cls(enable_memory_snapshot=True, scaledown_window=1)(served_class("Snapshotted"))
Plain = app.cls(scaledown_window=1)(served_class("Plain"))
