"""The exceptions of redis_ssot: one hierarchy under :class:`RedisSsotError`.

Raised by the Rust core (see ``crates/redis-ssot-py/src/errors.rs`` for the mapping).
"""

from __future__ import annotations

class RedisSsotError(Exception):
    """Base of every error raised by redis_ssot."""


class RedisUnavailable(RedisSsotError):
    """Redis cannot be used now: circuit open, connection down, or the call ran out of its
    budget. Retry after ``retry_after`` seconds. Never raised after a hang: every call has a
    budget."""

    def __init__(self, message: str, *, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidUserId(RedisSsotError, ValueError):
    """A user id that could reach another user's keys (or no key at all) was refused."""


class InvalidInput(RedisSsotError, ValueError):
    """A name or value that cannot be used (cache key, lock name, event data...)."""

    def __init__(self, message: str, *, what: str = "") -> None:
        super().__init__(message)
        self.what = what


class ConfigError(RedisSsotError):
    """Invalid settings; ``key`` names the setting as the user wrote it."""

    def __init__(self, message: str, *, key: str = "") -> None:
        super().__init__(message)
        self.key = key


class Conflict(RedisSsotError):
    """A compare-and-set lost: the stored version is not the expected one."""

    def __init__(self, message: str, *, expected: int = 0, current: int = 0) -> None:
        super().__init__(message)
        self.expected = expected
        self.current = current


class IdempotencyConflict(RedisSsotError):
    """An idempotency key was used before, within its window, for another event: nothing was
    stored. ``first`` is the id the key's first event got."""

    def __init__(self, message: str, *, key: str = "", first: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.first = first


class LockLost(RedisSsotError):
    """The caller no longer holds the lock (lease expired or taken over)."""

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        self.name = name


class TokenError(RedisSsotError):
    """A token was rejected; ``kind`` says why (``expired``, ``bad_signature``, ``revoked``...)."""

    def __init__(self, message: str, *, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


class DataError(RedisSsotError):
    """A stored value could not be decoded."""


class CommandError(RedisSsotError):
    """Redis refused the command (wrong type, syntax...)."""


__all__ = [
    "RedisSsotError",
    "RedisUnavailable",
    "InvalidUserId",
    "InvalidInput",
    "ConfigError",
    "Conflict",
    "LockLost",
    "TokenError",
    "DataError",
    "CommandError",
]
