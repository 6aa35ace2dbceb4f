"""Events.publish(..., idempotency_key=...): a retried publish stores and announces once; the
same key with another event raises IdempotencyConflict; async and sync alike."""

from __future__ import annotations

import asyncio

import pytest

import redis_ssot
import redis_ssot.sync


def test_a_repeated_key_publishes_once(redis, server) -> None:  # type: ignore[no-untyped-def]
    events = redis_ssot.Events(redis)
    stream = "ssot:{u:idem-py}:events"

    async def main() -> None:
        first = await events.publish("idem-py", "paid", {"order": 42}, idempotency_key="order-42")
        again = await events.publish("idem-py", "paid", {"order": 42}, idempotency_key="order-42")
        assert again == first
        concurrent = await asyncio.gather(
            *[events.publish("idem-py", "paid", 43, idempotency_key="order-43") for _ in range(16)]
        )
        assert len(set(concurrent)) == 1, concurrent
        with pytest.raises(redis_ssot.IdempotencyConflict) as info:
            await events.publish("idem-py", "paid", {"order": 7}, idempotency_key="order-42")
        assert (info.value.key, info.value.first) == ("order-42", first)
        for bad in ["", "two words", "k" * 129]:
            with pytest.raises(redis_ssot.InvalidInput):
                await events.publish("idem-py", "paid", 1, idempotency_key=bad)
        # Without a key every publish stores.
        await events.publish("idem-py", "paid", {"order": 42})

    asyncio.run(main())
    assert server.cli("XLEN", stream) == ["3"]


def test_the_sync_facade_takes_the_key_too(redis, server) -> None:  # type: ignore[no-untyped-def]
    events = redis_ssot.sync.Events(redis.with_options(blocking=True))
    first = events.publish("idem-sync", "paid", [1], idempotency_key="k-1")
    assert events.publish("idem-sync", "paid", [1], idempotency_key="k-1") == first
    assert server.cli("XLEN", "ssot:{u:idem-sync}:events") == ["1"]
