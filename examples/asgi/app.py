"""A plain ASGI app (no framework) for uvicorn behind sluice:

- GET /events/clock?n=N&every=S  server-sent events, like the Django
  example's, without a worker thread per open feed;
- WebSocket /ws/echo             echoes every text and binary message.

Run: python3 -m uvicorn app:app --uds /tmp/sluice-asgi.sock
"""
import asyncio
import json
import time
from urllib.parse import parse_qs


def now_ms():
    return int(time.time() * 1000)


def param(query, name, default, conv, lo, hi):
    try:
        v = conv(query.get(name, [default])[0])
    except ValueError:
        return default
    return min(max(v, lo), hi)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket" and scope["path"] == "/ws/echo":
        return await echo(receive, send)
    if scope["type"] == "http" and scope["path"] == "/events/clock":
        return await sse_clock(scope, receive, send)
    if scope["type"] == "http" and scope["path"] == "/":
        body = b"<!doctype html><title>sluice + ASGI</title><p>/events/clock (SSE) and /ws/echo (WebSocket)"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html; charset=utf-8")]})
        return await send({"type": "http.response.body", "body": body})
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"text/plain")]})
        return await send({"type": "http.response.body", "body": b"not found\n"})


async def sse_clock(scope, receive, send):
    query = parse_qs(scope["query_string"].decode())
    n = param(query, "n", "0", int, 0, 1_000_000)
    every = param(query, "every", "1", float, 0.01, 60.0)
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-cache"),
    ]})

    # The client going away (sluice closes the upstream connection at
    # once) arrives as http.disconnect: stop then, not at the next write.
    gone = asyncio.ensure_future(wait_disconnect(receive))
    try:
        await send({"type": "http.response.body", "body": b"retry: 2000\n\n", "more_body": True})
        i = 0
        while n == 0 or i < n:
            if i:
                done, _ = await asyncio.wait({gone}, timeout=every)
                if done:
                    return
            data = json.dumps({"seq": i, "sent_unix_ms": now_ms()})
            await send({"type": "http.response.body", "more_body": True,
                        "body": f"id: {i}\nevent: tick\ndata: {data}\n\n".encode()})
            i += 1
        await send({"type": "http.response.body", "body": b""})
    finally:
        gone.cancel()


async def wait_disconnect(receive):
    while (await receive())["type"] != "http.disconnect":
        pass


async def echo(receive, send):
    msg = await receive()
    if msg["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        if msg.get("text") is not None:
            await send({"type": "websocket.send", "text": msg["text"]})
        else:
            await send({"type": "websocket.send", "bytes": msg.get("bytes") or b""})
