"""The manager's API from Python: init/get_redis, commands, pipeline, health, errors, the
sync facade and the deprecation aliases."""

from __future__ import annotations

import asyncio
import os
import warnings

import pytest

import redis_ssot
import redis_ssot.compat
import redis_ssot.sync


def test_every_handle_reports_the_same_instance(redis) -> None:  # type: ignore[no-untyped-def]
    ids = {redis.instance_id, redis_ssot.get_redis().instance_id,
           redis_ssot.get_redis(decode_responses=True).instance_id,
           redis_ssot.sync.get_redis().instance_id}
    assert len(ids) == 1
    assert redis.instance_id.startswith(f"{os.getpid():08x}-")


def test_init_again_with_other_settings_names_the_conflict(redis, server) -> None:  # type: ignore[no-untyped-def]
    assert redis_ssot.init(server.url, app="pytest", command_timeout_ms=1000).instance_id == redis.instance_id
    with pytest.raises(redis_ssot.ConfigError) as info:
        redis_ssot.init(server.url, app="other")
    assert info.value.key == "redis"


def test_invalid_option_names_its_key(redis) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(redis_ssot.ConfigError) as info:
        redis_ssot.init("redis://127.0.0.1:1", command_timeout_ms="soon")
    assert info.value.key == "redis.command-timeout-ms"
    with pytest.raises(redis_ssot.ConfigError) as info:
        redis_ssot.init("redis://127.0.0.1:1", no_such_option=1)
    assert info.value.key == "redis.no-such-option"


def test_commands_bytes_in_and_out_and_decode(redis) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        assert await redis.set("py:k", b"\x00\xff") is True
        assert await redis.get("py:k") == b"\x00\xff"
        assert await redis.set("py:k", "x", nx=True) is False
        assert await redis.set("py:s", "héllo", ex=30) is True
        text = redis_ssot.get_redis(decode_responses=True)
        assert await text.get("py:s") == "héllo"
        assert await redis.incr("py:n") == 1 and await redis.incr("py:n", 5) == 6
        assert await redis.hset("py:h", mapping={"a": 1, "b": "2"}) == 2
        assert await redis.hget("py:h", "a") == b"1"
        assert await text.hgetall("py:h") == {"a": "1", "b": "2"}
        assert await redis.exists("py:k", "py:h", "py:none") == 2
        assert await redis.expire("py:k", 10) is True
        assert await redis.delete("py:k", "py:none") == 1
        assert await redis.publish("py:chan", "hi") == 0
        assert await redis.execute("ECHO", "raw") == b"raw"
        assert await redis.pipeline(transaction=True).set("py:p", 1).incr("py:p").get("py:p").execute() == [True, 2, b"2"]
        with pytest.raises(redis_ssot.CommandError):
            await redis.execute("HGET", "py:s", "f")
        with pytest.raises(TypeError):
            await redis.set("py:b", True)

    asyncio.run(main())


def test_health_is_a_doctor_like_dict(redis) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(redis.wait_ready(5))
    health = redis.health()
    assert health["instance_id"] == redis.instance_id
    assert health["breaker"] == "closed" == redis.breaker_state
    assert "ssot:pytest:command" in health["connections"]
    assert health["config"]["urls"][0].startswith("redis://127.0.0.1:")


def test_stores_semantics(redis) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        limiter = redis_ssot.RateLimiter(redis)
        first = await limiter.check("frank", "msgs", rate=2, period=60)
        second = await limiter.check("frank", "msgs", rate=2, period=60)
        third = await limiter.check("frank", "msgs", rate=2, period=60)
        assert first.allowed and second.allowed and not third.allowed
        assert third.retry_after > 0
        state = redis_ssot.AgentState(redis)
        assert await state.put("frank", "run-1", 0, {"step": 1}) == 1
        with pytest.raises(redis_ssot.Conflict) as info:
            await state.put("frank", "run-1", 0, {"step": 2})
        assert (info.value.expected, info.value.current) == (0, 1)
        assert await state.get("frank", "run-1") == (1, {"step": 1})
        locks = redis_ssot.Locks(redis)
        lease = await locks.acquire("py-nightly", "w1", 5)
        assert lease is not None
        assert await locks.acquire("py-nightly", "w2", 5) is None
        await locks.release(lease)
        with pytest.raises(redis_ssot.LockLost):
            await locks.release(lease)
        later = await locks.acquire("py-nightly", "w2", 5)
        assert later is not None and later.token > lease.token
        sessions = redis_ssot.Sessions(redis, ttl=60)
        s = await sessions.create("frank", {"ua": "pytest"})
        assert (await sessions.get("frank", s["id"]))["meta"] == {"ua": "pytest"}  # type: ignore[index]
        assert await sessions.revoke_all("frank") == 1
        tokens = redis_ssot.Tokens(redis, secret="s" * 32)
        claims = await tokens.verify(tokens.issue("frank", 60))
        assert claims["sub"] == "frank"
        with pytest.raises(redis_ssot.TokenError) as tok:
            await tokens.verify(redis_ssot.Tokens(redis, secret="t" * 32).issue("frank", 60))
        assert tok.value.kind == "bad_signature"

    asyncio.run(main())


def test_sync_facade_blocks_and_shares_the_manager(redis) -> None:  # type: ignore[no-untyped-def]
    r = redis_ssot.sync.get_redis()
    assert r.blocking and r.set("py:sync", "v") is True
    assert r.get("py:sync") == b"v"
    cache = redis_ssot.sync.UserCache(r)
    cache.set("gina", "k", b"v", ttl=60)
    assert asyncio.run(redis_ssot.UserCache(redis).get("gina", "k")) == b"v"
    assert r.pipeline().get("py:sync").execute() == [b"v"]


def test_deprecation_aliases_warn_once_each_and_return_the_same_manager(redis) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        handles = [redis_ssot.compat.get_redis_manager() for _ in range(3)]
        handles += [redis_ssot.compat.auth_manager() for _ in range(3)]
        handles += [redis_ssot.compat.cache_manager() for _ in range(3)]
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 3, [str(w.message) for w in deprecations]
    names = sorted(str(w.message).split("()")[0].rsplit(".", 1)[1] for w in deprecations)
    assert names == ["auth_manager", "cache_manager", "get_redis_manager"]
    assert all(w.filename == __file__ for w in deprecations), "points at the caller"
    assert {h.instance_id for h in handles} == {redis.instance_id}


def test_redis_is_subscriptable_for_annotations() -> None:
    assert redis_ssot.Redis[bytes] is redis_ssot.Redis
    assert redis_ssot.Redis[str] is redis_ssot.Redis
