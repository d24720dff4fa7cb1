# Function-call benchmark: the same trivial work as a function call and as a web endpoint.
import modal

app = modal.App("bench-calls")


@app.function(max_containers=1)
@modal.concurrent(max_inputs=64)
async def echo(x):
    return x


@app.function(max_containers=1)
@modal.concurrent(max_inputs=64)
async def items(n):
    for i in range(n):
        yield i


@app.function(max_containers=1)
@modal.concurrent(max_inputs=64)
@modal.fastapi_endpoint()
async def echo_http(x: int):
    return x
