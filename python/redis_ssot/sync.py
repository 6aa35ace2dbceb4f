"""The blocking facade, for Celery/RQ workers, Django views and scripts.

Same manager, same stores: the handle returned here blocks the calling thread (with the GIL
released) instead of returning awaitables, and so do the stores built from it::

    from redis_ssot import sync

    redis = sync.get_redis()
    redis.set("k", "v")
    sync.UserCache(redis).get("alice", "profile")

Do not call it from inside a running asyncio loop: it would block the loop.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

from . import _native
from ._native import (
    AgentState,
    Decision,
    Enqueued,
    Events,
    Jobs,
    Lease,
    Locks,
    Pipeline,
    RateLimiter,
    Redis,
    Sessions,
    Tokens,
    UserCache,
)


def init(
    url: Optional[str] = None,
    *,
    app: Optional[str] = None,
    config: Union[str, "os.PathLike[str]", None] = None,
    decode_responses: bool = False,
    **options: Any,
) -> Redis:
    """:func:`redis_ssot.init`, returning a blocking handle."""
    _native.init(
        url, app=app, config=None if config is None else os.fspath(config), **options
    )
    return _native.get_redis(decode_responses=decode_responses, blocking=True)


def get_redis(*, decode_responses: bool = False) -> Redis:
    """:func:`redis_ssot.get_redis`, returning a blocking handle of the same manager."""
    return _native.get_redis(decode_responses=decode_responses, blocking=True)


__all__ = [
    "init",
    "get_redis",
    "Redis",
    "Pipeline",
    "UserCache",
    "Sessions",
    "RateLimiter",
    "Decision",
    "AgentState",
    "Locks",
    "Lease",
    "Jobs",
    "Enqueued",
    "Events",
    "Tokens",
]
