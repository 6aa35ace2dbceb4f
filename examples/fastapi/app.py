"""A FastAPI service on redis_ssot: one manager for the whole process (`get_redis()`), a
per-user cache, a per-user rate limit, and events that `ssot serve` delivers to the user's
WebSockets.

    REDIS_URL=redis://127.0.0.1:6379 uvicorn app:app --workers 4

Each uvicorn worker is a forked process: redis_ssot gives each its own connections on first
use, and every request of a worker shares them.
"""

from __future__ import annotations

from typing import Dict

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import redis_ssot

app = FastAPI(title="redis-ssot example")

# Handles hold no connection: building them at import time is safe before a fork.
redis = redis_ssot.get_redis()
cache = redis_ssot.UserCache(redis)
limiter = redis_ssot.RateLimiter(redis)
events = redis_ssot.Events(redis)

MESSAGES_PER_MINUTE = 20


class Message(BaseModel):
    text: str


@app.exception_handler(redis_ssot.InvalidUserId)
async def invalid_user(_: Request, exc: redis_ssot.InvalidUserId) -> JSONResponse:
    return JSONResponse({"error": "invalid_user_id", "detail": str(exc)}, status_code=400)


@app.exception_handler(redis_ssot.RedisUnavailable)
async def unavailable(_: Request, exc: redis_ssot.RedisUnavailable) -> JSONResponse:
    retry = max(1, round(exc.retry_after))
    return JSONResponse(
        {"error": "unavailable", "retry_after": exc.retry_after},
        status_code=503,
        headers={"Retry-After": str(retry)},
    )


@app.post("/users/{user}/messages")
async def post_message(user: str, message: Message) -> JSONResponse:
    decision = await limiter.check(user, "messages", rate=MESSAGES_PER_MINUTE, period=60)
    if not decision.allowed:
        return JSONResponse(
            {"error": "rate_limited", "retry_after": decision.retry_after},
            status_code=429,
            headers={"Retry-After": str(max(1, round(decision.retry_after)))},
        )
    await cache.set(user, "last-message", message.text, ttl=3600)
    event_id = await events.publish(user, "message", {"text": message.text})
    return JSONResponse({"id": event_id, "remaining": decision.remaining})


@app.get("/users/{user}/last-message")
async def last_message(user: str) -> Dict[str, str]:
    text = await cache.get(user, "last-message")
    return {"text": "" if text is None else text.decode()}


@app.get("/health")
async def health() -> JSONResponse:
    report = redis.health()
    return JSONResponse(report, status_code=200 if report["healthy"] else 503)
