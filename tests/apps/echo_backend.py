# A plain ASGI server (no stoker in it) that web_servers.py starts with uvicorn: it reports what
# it was sent, streams slowly, and echoes WebSocket messages.
import asyncio
import json
import os

last_close = {"code": None}


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await websocket(scope, receive, send)
    elif scope["type"] == "http":
        await http(scope, receive, send)


async def respond(send, status, body, content_type=b"application/json"):
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def http(scope, receive, send):
    path = scope["path"]
    if path == "/exit":
        os._exit(0)  # the server dies mid-request, before answering
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for i in range(3):
            if i:
                await asyncio.sleep(1.0)
            await send({"type": "http.response.body", "body": f"piece {i}\n".encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    total = 0
    while True:
        message = await receive()
        total += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    if path == "/last-close":
        await respond(send, 200, json.dumps(last_close).encode())
        return
    seen = {
        "method": scope["method"],
        "path": path,
        "raw_path": (scope.get("raw_path") or b"").decode("latin-1"),
        "query": scope["query_string"].decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "body_bytes": total,
    }
    await send(
        {
            "type": "http.response.start",
            "status": 201 if path.startswith("/created") else 200,
            "headers": [(b"content-type", b"application/json"), (b"x-backend", b"echo"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(seen).encode()})


async def websocket(scope, receive, send):
    await receive()  # websocket.connect
    offered = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            last_close["code"] = message.get("code")
            return
        if message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4001, "reason": "asked to"})
            return
        if message.get("text") == "whoami":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            await send({"type": "websocket.send", "text": json.dumps({"client": scope["client"][0], "headers": headers})})
            continue
        reply = {"type": "websocket.send"}
        if message.get("text") is not None:
            reply["text"] = message["text"]
        else:
            reply["bytes"] = message["bytes"]
        await send(reply)
