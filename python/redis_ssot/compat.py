"""Old entry points kept while a codebase migrates to :func:`redis_ssot.get_redis`.

Each alias returns the same manager and warns with :class:`DeprecationWarning` once per
process, naming itself, so the remaining call sites show up (``ssot check`` also finds them
statically). A forked child is a new process and warns again.
"""

from __future__ import annotations

import os
import threading
import warnings

from . import get_redis
from ._native import Redis

_warned: set[str] = set()
_lock = threading.Lock()


def _reset_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    _warned.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _alias(name: str) -> Redis[bytes]:
    with _lock:
        first = name not in _warned
        _warned.add(name)
    if first:
        warnings.warn(
            f"redis_ssot.compat.{name}() is deprecated: use redis_ssot.get_redis(), "
            "which returns the same manager",
            DeprecationWarning,
            stacklevel=3,
        )
    return get_redis()


def get_redis_manager() -> Redis[bytes]:
    """Former general-purpose getter."""
    return _alias("get_redis_manager")


def auth_manager() -> Redis[bytes]:
    """Former manager of the authentication module."""
    return _alias("auth_manager")


def cache_manager() -> Redis[bytes]:
    """Former per-user cache manager."""
    return _alias("cache_manager")


__all__ = ["get_redis_manager", "auth_manager", "cache_manager"]
