"""`os.fork()` while another thread is mid-call, from its first use on: the child's calls
work, on a connection of its own, and nothing hangs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from conftest import SCENARIOS, RedisServer

# Seconds between the other thread starting its first use and the first fork: inside the
# runtime and manager being built, the connect, the first results handed back, and after.
FIRST_FORK_DELAYS = [0.0, 0.0001, 0.0003, 0.0006, 0.001, 0.002, 0.004, 0.01]
# Forks made back to back from the first one on (as in scenarios/fork.py).
BURST = 8
# Forks after those, each while the other thread calls in a loop.
MORE_FORKS = 4


def test_a_fork_mid_call_gives_the_child_working_calls_on_its_own_connection(
    fresh_server: RedisServer,
) -> None:
    env = {**os.environ, "REDIS_URL": fresh_server.url, "SSOT_REDIS_APP": "fork"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(SCENARIOS / "fork.py"), str(delay), str(MORE_FORKS)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=tempfile.gettempdir(),
        )
        for delay in FIRST_FORK_DELAYS
    ]
    reports = []
    for delay, proc in zip(FIRST_FORK_DELAYS, procs):
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, (delay, err)
        reports.append((delay, json.loads(out.strip().splitlines()[-1])))
    for delay, report in reports:
        assert report["parent_calls"] > 0, (delay, report)
        assert len(report["children"]) == BURST + MORE_FORKS
        for child in report["children"]:
            where = (delay, child)
            # Exited by itself (not by the SIGALRM that ends a stuck child) and reported.
            assert child["status"] == 0, where
            assert "error" not in child, where
            assert child["async_calls"] == 50 and child["sync_get"] == "1", where
            # Its own manager, on its own named connection, which the server lists.
            assert child["instance_id"] != report["parent_instance_id"], where
            assert child["name"] == "ssot:fork:command", where
            assert child["id"] != report["parent_id"], where
            assert {"id": child["id"], "name": "ssot:fork:command"} in child["clients"], where
