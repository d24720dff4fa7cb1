# @modal.batched functions and a batched class method; each batch records its size in a file.
import asyncio

import modal

app = modal.App("batched")


@app.function(max_containers=1)
@modal.batched(max_batch_size=4, wait_ms=2000)
def double(xs: list[int], logs: list[str]) -> list[int]:
    with open(logs[0], "a") as f:
        f.write(f"{len(xs)} {modal.current_input_id()}\n")
    return [2 * x for x in xs]


@app.function(max_containers=1)
@modal.batched(max_batch_size=4, wait_ms=2000)
async def fail_batch(xs: list[int]) -> list[int]:
    await asyncio.sleep(0)
    raise ValueError(f"batch {sorted(xs)} failed")


@app.function(max_containers=1)
@modal.batched(max_batch_size=4, wait_ms=100)
def short(xs: list[int]) -> list[int]:
    return xs[1:]


@app.cls(max_containers=1)
class Embedder:
    prefix: str = modal.parameter(default="v")

    @modal.batched(max_batch_size=3, wait_ms=2000)
    async def embed(self, texts: list[str], logs: list[str]) -> list[str]:
        with open(logs[0], "a") as f:
            f.write(f"{len(texts)}\n")
        return [f"{self.prefix}:{t}" for t in texts]
