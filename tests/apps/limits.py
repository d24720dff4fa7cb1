# Raw ASGI endpoints for the edge's size limits: count a body, answer before reading one, and say
# which event ended the last body read; plus a function no test may ever reach.
import modal

app = modal.App("edge-limits")


@app.function()
@modal.concurrent(max_inputs=10)
@modal.asgi_app()
def edge():
    last = []  # the event that ended each body read, newest last

    async def read_body(receive, each=None):
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                last.append("http.disconnect")
                return total, False
            total += len(message.get("body", b""))
            if each is not None:
                try:
                    await each()
                except OSError:  # ASGI 2.4: a send after the client left raises
                    last.append("http.disconnect")
                    return total, False
            if not message.get("more_body"):
                last.append("http.request")
                return total, True

    async def application(scope, receive, send):
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is not None:
                    await send({"type": "websocket.send", "text": message["text"]})
                else:
                    await send({"type": "websocket.send", "bytes": message["bytes"]})
        if scope["type"] != "http":
            return
        if scope["path"] == "/early":
            # Starts the response before reading the body, and streams a byte per chunk read.
            await send({"type": "http.response.start", "status": 200, "headers": []})

            async def tick():
                await send({"type": "http.response.body", "body": b".", "more_body": True})

            total, whole = await read_body(receive, tick)
            if whole:
                await send({"type": "http.response.body", "body": f"{total}".encode()})
            return
        if scope["path"] == "/wait":
            # Never answers: reads the (empty) body, then waits for the client to go away.
            await receive()
            last.append("waited for " + (await receive())["type"])
            return
        if scope["path"] == "/last":
            body = (last[-1] if last else "").encode()
        else:
            total, _ = await read_body(receive)
            body = f"{total}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})

    return application


@app.function()
@modal.asgi_app()
def untouched():
    async def application(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"reached"})

    return application
