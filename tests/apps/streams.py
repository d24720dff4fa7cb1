# A raw ASGI app that moves large bodies both ways and echoes WebSocket messages.
import modal

app = modal.App("streams")


@app.function()
@modal.concurrent(max_inputs=10)
@modal.asgi_app()
def raw():
    import resource
    import urllib.parse

    closes = []  # close codes of WebSocket clients that went away, in order

    async def firehose(scope, send, record):
        """Sends until the client goes away (ASGI 2.4: a send raises), then says so in `record`."""
        websocket = scope["type"] == "websocket"
        chunk = b"x" * 65536
        if websocket:
            message = {"type": "websocket.send", "bytes": chunk}
        else:
            message = {"type": "http.response.body", "body": chunk, "more_body": True}
        for sent in range(16384):  # 1 GiB at most, should nobody ever disconnect
            try:
                await send(message)
            except OSError:
                with open(record, "w") as f:
                    f.write(f"stopped after {sent} chunks")
                return

    async def application(scope, receive, send):
        if scope["path"] == "/firehose":
            record = urllib.parse.parse_qs(scope["query_string"].decode())["record"][0]
            if scope["type"] == "websocket":
                await receive()
                await send({"type": "websocket.accept"})
            else:
                await send({"type": "http.response.start", "status": 200, "headers": []})
            await firehose(scope, send, record)
            return
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    closes.append(message.get("code", 1000))
                    return
                if message.get("text") == "close":
                    await send({"type": "websocket.close", "code": 4001, "reason": "asked to"})
                    return
                reply = {"type": "websocket.send"}
                if message.get("text") is not None:
                    reply["text"] = message["text"]
                else:
                    reply["bytes"] = message["bytes"]
                await send(reply)
        if scope["type"] != "http":
            return
        if scope["path"] == "/closes":
            body = ",".join(str(code) for code in closes).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
        elif scope["path"] == "/count":
            total = 0
            while True:
                message = await receive()
                total += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            body = f'{{"bytes": {total}, "peak_kib": {peak_kib}}}'.encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
        elif scope["path"] == "/download":
            size = int(scope["query_string"].decode().split("=")[1])
            chunk = b"x" * 65536
            await send({"type": "http.response.start", "status": 200, "headers": []})
            sent = 0
            while sent < size:
                piece = chunk[: size - sent]
                sent += len(piece)
                await send({"type": "http.response.body", "body": piece, "more_body": sent < size})
        else:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    return application
