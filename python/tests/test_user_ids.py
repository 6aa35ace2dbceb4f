"""Hostile user ids raise InvalidUserId and touch no key outside the user's hash tag."""

from __future__ import annotations

import asyncio

import pytest

import redis_ssot
import redis_ssot.sync

HOSTILE = ["", "{", "}", "*", ":", "a:b", "alice}", "{u:bob}", "x\x00y", "a" * 10 * 1024,
           b"\xff\xfe", b"al\xc3ice\x80", "b\u00f6b", "a b", "*:*"]


def test_hostile_ids_raise_invalid_user_id_in_every_store(redis, server) -> None:  # type: ignore[no-untyped-def]
    server.cli("FLUSHALL")
    cache = redis_ssot.UserCache(redis)
    sessions = redis_ssot.Sessions(redis, ttl=60)
    limiter = redis_ssot.RateLimiter(redis)
    state = redis_ssot.AgentState(redis)
    events = redis_ssot.Events(redis)
    jobs = redis_ssot.Jobs(redis, "agent")

    async def attempts(user: object) -> int:
        calls = [
            lambda: cache.set(user, "k", b"v", ttl=60),  # type: ignore[arg-type]
            lambda: cache.get(user, "k"),  # type: ignore[arg-type]
            lambda: cache.clear(user),  # type: ignore[arg-type]
            lambda: sessions.create(user),  # type: ignore[arg-type]
            lambda: limiter.check(user, "m", rate=1, period=1),  # type: ignore[arg-type]
            lambda: state.put(user, "run", 0, {}),  # type: ignore[arg-type]
            lambda: events.publish(user, "message", {}),  # type: ignore[arg-type]
            lambda: jobs.enqueue(user, "chat", {"text": "x"}),  # type: ignore[arg-type]
        ]
        raised = 0
        for call in calls:
            with pytest.raises(redis_ssot.InvalidUserId):
                await call()
            raised += 1
        return raised

    async def main() -> None:
        for user in HOSTILE:
            assert await attempts(user) == 8, repr(user)
        # A valid neighbour works, and its keys all carry its own hash tag.
        await cache.set("alice", "k", b"v", ttl=60)
        await events.publish("alice", "message", {"n": 1})

    asyncio.run(main())
    keys = sorted(server.cli("KEYS", "*"))
    assert keys, "the valid user's writes are there"
    assert all(k.startswith("ssot:{u:alice}:") for k in keys), keys


def test_invalid_user_id_is_a_value_error_and_names_the_problem(redis) -> None:  # type: ignore[no-untyped-def]
    cache = redis_ssot.sync.UserCache(redis.with_options(blocking=True))
    with pytest.raises(ValueError) as info:
        cache.get("a*b", "k")
    assert isinstance(info.value, redis_ssot.RedisSsotError)
    assert "'*'" in str(info.value)


def test_wrong_type_of_user_id_is_invalid_too(redis) -> None:  # type: ignore[no-untyped-def]
    cache = redis_ssot.UserCache(redis.with_options(blocking=True))
    with pytest.raises(redis_ssot.InvalidUserId):
        cache.get(42, "k")  # type: ignore[arg-type]
