"""The example app against a real Redis and a real `ssot serve`: an event published in a
request handler arrives on the user's WebSocket."""

from __future__ import annotations

import json
from typing import Any, Dict

from fastapi.testclient import TestClient
from websockets.sync.client import ClientConnection, connect

import redis_ssot
from conftest import SECRET


def token(user: str) -> str:
    tokens = redis_ssot.Tokens(redis_ssot.get_redis(), secret=SECRET)
    return tokens.issue(user, 600)


def next_frame(ws: ClientConnection, kind: str) -> Dict[str, Any]:
    while True:
        frame: Dict[str, Any] = json.loads(ws.recv(timeout=10))
        if frame.get("type") == kind:
            return frame


def test_event_published_in_a_handler_reaches_the_websocket(redis_url: str, gateway: str) -> None:
    from app import app

    headers = {"Authorization": f"Bearer {token('zoe')}"}
    with connect(gateway, additional_headers=headers) as ws:
        next_frame(ws, "status")
        with TestClient(app) as client:
            response = client.post("/users/zoe/messages", json={"text": "hello from FastAPI"})
            assert response.status_code == 200, response.text
            published = response.json()["id"]
            frame = next_frame(ws, "event")
            assert frame["id"] == published
            assert frame["event"] == "message"
            assert frame["data"] == {"text": "hello from FastAPI"}
            last = client.get("/users/zoe/last-message")
            assert last.json() == {"text": "hello from FastAPI"}


def test_rate_limit_and_invalid_user(redis_url: str) -> None:
    from app import MESSAGES_PER_MINUTE, app

    with TestClient(app) as client:
        codes = [client.post("/users/yan/messages", json={"text": "x"}).status_code
                 for _ in range(MESSAGES_PER_MINUTE + 1)]
        assert codes[:-1] == [200] * MESSAGES_PER_MINUTE
        limited = client.post("/users/yan/messages", json={"text": "x"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        bad = client.post("/users/a*b/messages", json={"text": "x"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_user_id"
        assert client.get("/health").json()["healthy"] is True
