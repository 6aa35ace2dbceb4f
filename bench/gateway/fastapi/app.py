"""FastAPI peer of the ssot gateway benchmark: uvicorn, one worker, redis-py asyncio.

Same semantics as the gateway, the FastAPI way:
- ``GET /ws?user=<id>&token=<static token>`` accepts a WebSocket, registers it under its user
  and sends ``{"type":"ready"}`` once the process is subscribed to the user's channel;
- ``POST /v1/users/<id>/events`` with ``Authorization: Bearer <service key>`` and
  ``{"event":..,"data":..}`` PUBLISHes to ``user:<id>``;
- ONE shared Pub/Sub connection per process: the first local socket of a user SUBSCRIBEs its
  channel, the last one to leave UNSUBSCRIBEs; one reader task fans messages out to the
  user's local sockets.

Env: REDIS_URL, BENCH_TOKEN, SSOT_SERVICE_KEY. Run: ``uvicorn app:app --port N``.
"""

import asyncio
import json
import os
from contextlib import asynccontextmanager

import redis.asyncio as redis
from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

TOKEN = os.environ["BENCH_TOKEN"]
SERVICE_KEY = os.environ["SSOT_SERVICE_KEY"]
PREFIX = "user:"

client: redis.Redis
pubsub: redis.client.PubSub
sockets: dict[str, set[WebSocket]] = {}


async def fan_out() -> None:
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        user = message["channel"].decode()[len(PREFIX):]
        text = message["data"].decode()
        for ws in list(sockets.get(user, ())):
            try:
                await ws.send_text(text)
            except Exception:
                pass


@asynccontextmanager
async def lifespan(_app: FastAPI):
    global client, pubsub
    client = redis.from_url(os.environ["REDIS_URL"])
    pubsub = client.pubsub()
    # listen() needs one subscription to start with.
    await pubsub.subscribe(PREFIX + "-")
    reader = asyncio.create_task(fan_out())
    yield
    reader.cancel()
    await pubsub.aclose()
    await client.aclose()


app = FastAPI(lifespan=lifespan)


class Publish(BaseModel):
    event: str
    data: dict


@app.post("/v1/users/{user}/events")
async def publish(user: str, body: Publish, request: Request):
    if request.headers.get("authorization") != f"Bearer {SERVICE_KEY}":
        raise HTTPException(status_code=401, detail="service_key")
    receivers = await client.publish(PREFIX + user, json.dumps(body.model_dump()))
    return {"ok": True, "receivers": receivers}


@app.websocket("/ws")
async def websocket(ws: WebSocket, user: str, token: str):
    if token != TOKEN:
        await ws.close(code=1008)
        return
    await ws.accept()
    local = sockets.setdefault(user, set())
    local.add(ws)
    if len(local) == 1:
        await pubsub.subscribe(PREFIX + user)
    await ws.send_text('{"type":"ready"}')
    try:
        while True:
            await ws.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        local.discard(ws)
        if not local and sockets.get(user) is local:
            del sockets[user]
            await pubsub.unsubscribe(PREFIX + user)
