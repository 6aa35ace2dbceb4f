"""Wraps a call made with no running loop in a coroutine (see bridge.rs), so
``asyncio.run(redis.get("k"))`` works as it does with redis-py."""

from typing import Any, Awaitable


async def wait(call: Awaitable[Any]) -> Any:
    return await call
