"""One manager for many coroutines, threads, loops and a forked child; outages that never
hang and never block the loop."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

from conftest import SCENARIOS, RedisServer, run_scenario

ROLES = {"ssot:conc:command", "ssot:conc:subscriber", "ssot:conc:blocking"}


def test_coroutines_threads_and_fork_share_one_named_set_per_process(fresh_server: RedisServer) -> None:
    done = run_scenario("concurrency", {"REDIS_URL": fresh_server.url})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["coroutine_calls"] == 10_000
    assert report["thread_calls"] == 1_000
    # Before the fork: only this process's named connections (the listing runs on one of them).
    before = Counter(report["before_fork"])
    assert set(before) <= ROLES, before
    assert before["ssot:conc:command"] == 1, before
    assert before["ssot:conc:subscriber"] == 1, before
    child = report["child"]
    assert "error" not in child, child
    assert child["calls"] == 200
    assert child["id"] != report["parent_id"], "the child built its own manager"
    # With the child's set open: one command connection per process, nothing unnamed.
    during = Counter(child["clients"])
    assert set(during) <= ROLES, during
    assert during["ssot:conc:command"] == 2, during
    assert report["parent_after"] == 50
    after = Counter(report["after_fork"])
    assert set(after) <= ROLES, after
    assert after["ssot:conc:command"] == 1, after


def test_sigkill_raises_unavailable_within_budget_without_blocking_the_loop(fresh_server: RedisServer) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(SCENARIOS / "kill.py")],
        env={"REDIS_URL": fresh_server.url, "PATH": "/usr/bin:/bin"},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdin and proc.stdout
    try:
        assert proc.stdout.readline().strip() == "KILL"
        fresh_server.kill()
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "RESTART"
        fresh_server.start()
        proc.stdin.write("\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line.startswith("REPORT "), (line, proc.stderr.read() if proc.poll() is not None else "")
        report = json.loads(line[len("REPORT "):])
    finally:
        proc.kill()
        proc.wait()
    calls = report["calls"]
    assert report["ok_before"] > 0, "calls succeeded before the kill"
    failed = [c for c in calls if not c.get("ok")]
    assert failed, "calls made while Redis was down failed"
    assert all(c.get("unavailable") for c in failed), [c for c in failed if not c.get("unavailable")]
    # Every call, failed or not, ended within its budget (500 ms command timeout) plus slack.
    assert max(c["elapsed"] for c in calls) < 1.0, max(c["elapsed"] for c in calls)
    assert all(c["retry_after"] >= 0 for c in failed)
    assert report["max_lag"] < 0.050, report["max_lag"]
    assert report["ticks"] > 10
    assert report["recovered_after"] is not None, "calls work again after the restart"
    assert report["same_id"]
