# An app written the way Modal's examples write model serving: the model is loaded once per
# container in @modal.enter, a @modal.method is called with .remote(), a @modal.fastapi_endpoint
# method serves it over HTTP, and a web UI class with @modal.concurrent serves a FastAPI page
# (an HTML form) through @modal.asgi_app that calls the model class.
import asyncio
import html
import time
import urllib.parse

import modal

import identity

app = modal.App("example-sentiment")

MODEL_NAME = "tiny-sentiment-v1"


def load_weights() -> dict[str, float]:
    # Stands in for downloading and loading weights (torch.load, from_pretrained, ...).
    time.sleep(0.2)
    positive = ["good", "great", "love", "excellent", "happy", "fast"]
    negative = ["bad", "awful", "hate", "slow", "sad", "broken"]
    return {**{w: 1.0 for w in positive}, **{w: -1.0 for w in negative}}


@app.cls(max_containers=1, scaledown_window=300)
class Model:
    @modal.enter()
    def load_model(self):
        print(f"loading {MODEL_NAME}", flush=True)
        self.weights = load_weights()
        self.loaded_in = identity.pid()

    def _classify(self, text: str) -> dict:
        words = [w.strip(".,!?").lower() for w in text.split()]
        score = sum(self.weights.get(w, 0.0) for w in words)
        label = "POSITIVE" if score > 0 else "NEGATIVE" if score < 0 else "NEUTRAL"
        return {"label": label, "score": score, "model": MODEL_NAME, "pid": self.loaded_in}

    @modal.method()
    def predict(self, text: str) -> dict:
        return self._classify(text)

    @modal.fastapi_endpoint(method="POST", docs=True)
    def web(self, request: dict):
        return self._classify(request["text"])


@app.cls(scaledown_window=300, max_containers=1)
@modal.concurrent(max_inputs=16)
class WebUI:
    @modal.enter()
    def start(self):
        self.waiting = 0
        self.all_in = None

    @modal.asgi_app()
    def ui(self):
        from fastapi import FastAPI, Request
        from fastapi.responses import HTMLResponse

        web_app = FastAPI(title="Sentiment")

        @web_app.get("/", response_class=HTMLResponse)
        def page():
            return (
                "<html><body><h1>Sentiment</h1>"
                '<form method="post" action="/classify"><input name="text"><button>Classify</button></form>'
                "</body></html>"
            )

        @web_app.post("/classify", response_class=HTMLResponse)
        async def classify(request: Request):
            form = urllib.parse.parse_qs((await request.body()).decode())
            text = form.get("text", [""])[0]
            result = await Model().predict.remote.aio(text)
            verdict = f"{html.escape(text)}: <b>{result['label']}</b> ({result['score']:g})"
            return f"<html><body><p>{verdict}</p></body></html>"

        @web_app.get("/gather")
        async def gather(n: int):
            # Answers only once n requests are in at the same time: it takes @modal.concurrent.
            if self.all_in is None:
                self.all_in = asyncio.Event()
            self.waiting += 1
            if self.waiting >= n:
                self.all_in.set()
            await asyncio.wait_for(self.all_in.wait(), 30)
            return {"together": self.waiting, "pid": identity.pid()}

        return web_app
