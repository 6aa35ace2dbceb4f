"""Python and Rust share keys: the Rust UserCache and Python's; a job enqueued from Python is
run by `ssot worker`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import redis_ssot
from conftest import ROOT, RedisServer, binary


def peer(server: RedisServer, *args: str) -> "subprocess.CompletedProcess[str]":
    exe = binary("SSOT_CACHE_PEER", ROOT / "target/debug/examples/cache_peer")
    return subprocess.run([str(exe), server.url, *args], capture_output=True, text=True, timeout=30)


def test_rust_user_cache_value_is_read_by_python_and_back(redis, server: RedisServer) -> None:  # type: ignore[no-untyped-def]
    cache = redis_ssot.UserCache(redis)
    written = peer(server, "set", "carol", "profile", "from-rust")
    assert written.returncode == 0, written.stderr
    assert asyncio.run(cache.get("carol", "profile")) == b"from-rust"

    asyncio.run(cache.set("carol", "reply", "from-python", ttl=60))
    read = peer(server, "get", "carol", "reply")
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "from-python"
    # Another user's entry of the same name is not visible through carol's scope.
    assert peer(server, "get", "dave", "reply").returncode == 1


def test_job_enqueued_from_python_is_run_by_ssot_worker(redis, server: RedisServer) -> None:  # type: ignore[no-untyped-def]
    exe = binary("SSOT_BIN", ROOT / "target/debug/ssot")
    jobs = redis_ssot.Jobs(redis, "agent")
    enqueued = asyncio.run(jobs.enqueue("erin", "chat", {"text": "2 + 3", "message_id": "m-1"},
                                        idempotency_key="m-1"))
    assert not enqueued.duplicate
    again = asyncio.run(jobs.enqueue("erin", "chat", {"text": "2 + 3", "message_id": "m-1"},
                                     idempotency_key="m-1"))
    assert again.duplicate and again.id == enqueued.id

    env = {k: v for k, v in os.environ.items() if not k.startswith("SSOT_")}
    env.update({"SSOT_LOG": "warn", "REDIS_URL": server.url})
    worker = subprocess.Popen([str(exe), "worker", "--redis", server.url, "--agent", "demo"],
                              env=env, cwd=tempfile.mkdtemp(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        events: list = []
        while time.monotonic() < deadline:
            raw = server.cli("XRANGE", "ssot:{u:erin}:events", "-", "+")
            events = [line for line in raw if line.startswith("agent_")]
            if "agent_completed" in events:
                break
            time.sleep(0.1)
        assert "agent_completed" in events, (events, worker.poll())
        assert events[0] == "agent_started", events
        # Acked: nothing left pending in the queue's group.
        pending = server.cli("XPENDING", "ssot:{jobs:agent}:stream", "workers")
        assert pending[0] == "(integer) 0" or pending[0] == "0", pending
    finally:
        worker.terminate()
        worker.wait(timeout=10)
