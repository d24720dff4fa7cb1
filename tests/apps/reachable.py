# get_web_url() URLs fetched by Python's HTTP clients from inside the app's own containers: httpx
# and urllib from a sync function (a thread), aiohttp and httpx's async client from an async one
# (on the container's own event loop).
import json
import urllib.request

import modal

app = modal.App("reachable")


@app.function()
@modal.fastapi_endpoint()
def hello(who: str = "world"):
    return {"hello": who}


@app.function()
def fetch_sync() -> dict:
    import httpx

    url = hello.get_web_url()
    with urllib.request.urlopen(f"{url}/?who=urllib", timeout=30) as response:
        by_urllib = json.loads(response.read())
    return {"url": url, "urllib": by_urllib, "httpx": httpx.get(f"{url}/?who=httpx", timeout=30).json()}


@app.function()
async def fetch_async() -> dict:
    import aiohttp
    import httpx

    url = hello.get_web_url()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/", params={"who": "aiohttp"}) as response:
            by_aiohttp = await response.json()
    async with httpx.AsyncClient(timeout=30) as client:
        by_httpx = (await client.get(f"{url}/", params={"who": "httpx-async"})).json()
    return {"url": url, "aiohttp": by_aiohttp, "httpx_async": by_httpx}
