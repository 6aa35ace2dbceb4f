"""redis_ssot: the one Redis manager of a Python process, backed by the Rust core.

    import redis_ssot

    redis = redis_ssot.get_redis()          # lazily from ssot.toml / REDIS_URL / SSOT_REDIS_*
    await redis.set("greeting", "hello", ex=60)
    cache = redis_ssot.UserCache(redis)
    await cache.set("alice", "profile", b"{}", ttl=300)

Every handle talks to the same manager (same ``instance_id``): one bounded, named set of
connections per process, with a circuit breaker and a budget on every call. Calls are
awaitables of the caller's running loop; :mod:`redis_ssot.sync` has the blocking facade.
After ``os.fork()`` the child builds its own manager on first use.
"""

from __future__ import annotations

import os
from typing import Any, Literal, Optional, Union, overload

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
from .errors import (
    CommandError,
    ConfigError,
    Conflict,
    DataError,
    IdempotencyConflict,
    InvalidInput,
    InvalidUserId,
    LockLost,
    RedisSsotError,
    RedisUnavailable,
    TokenError,
)


@overload
def init(
    url: Optional[str] = None,
    *,
    app: Optional[str] = None,
    config: Union[str, "os.PathLike[str]", None] = None,
    decode_responses: Literal[False] = False,
    **options: Any,
) -> Redis[bytes]: ...
@overload
def init(
    url: Optional[str] = None,
    *,
    app: Optional[str] = None,
    config: Union[str, "os.PathLike[str]", None] = None,
    decode_responses: Literal[True],
    **options: Any,
) -> Redis[str]: ...
def init(
    url: Optional[str] = None,
    *,
    app: Optional[str] = None,
    config: Union[str, "os.PathLike[str]", None] = None,
    decode_responses: bool = False,
    **options: Any,
) -> Union[Redis[bytes], Redis[str]]:
    """Initialises the process-wide manager once and returns a handle of it.

    Settings come from the ``[redis]`` table of ``config`` (default ``./ssot.toml`` when
    present), then ``REDIS_URL`` / ``SSOT_REDIS_*``, then ``options`` (the TOML keys in
    Python spelling: ``command_timeout_ms=500``, ``breaker={"open_duration_ms": 1000}``),
    then ``url`` and ``app``. Invalid settings raise :class:`ConfigError` naming the key;
    so does a second call with different settings.
    """
    _native.init(
        url, app=app, config=None if config is None else os.fspath(config), **options
    )
    return _native.get_redis(decode_responses=decode_responses)


@overload
def get_redis(*, decode_responses: Literal[False] = False) -> Redis[bytes]: ...
@overload
def get_redis(*, decode_responses: Literal[True]) -> Redis[str]: ...
def get_redis(*, decode_responses: bool = False) -> Union[Redis[bytes], Redis[str]]:
    """The process's manager; initialised from ``ssot.toml`` and the environment when
    :func:`init` was not called. Every handle reports the same ``instance_id``."""
    return _native.get_redis(decode_responses=decode_responses)


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
    "RedisSsotError",
    "RedisUnavailable",
    "InvalidUserId",
    "InvalidInput",
    "ConfigError",
    "Conflict",
    "IdempotencyConflict",
    "LockLost",
    "TokenError",
    "DataError",
    "CommandError",
]
