"""Forks while another thread is mid-call: first at `argv[1]` seconds after that thread
starts its first use (building the runtime and the manager, connecting, handing its first
results back) and `BURST - 1` more times right after it, then `argv[2]` more times while it
calls in a loop. Each child calls through
the manager (blocking and async) and reports what its connection is. Prints a JSON report.
Run by test_fork.py in its own interpreter; settings come from REDIS_URL and SSOT_REDIS_APP."""

import asyncio
import json
import os
import select
import signal
import sys
import threading
import time

import redis_ssot
import redis_ssot.sync
from child_report import read_to_end

# A child that has not reported within this many seconds is stuck (and ended).
CHILD_BUDGET_S = 15
# Forks made back to back from the first one on.
BURST = 8


def connection_info(redis) -> dict:
    """The fields of `CLIENT INFO`: the connection this process's manager sends commands on."""
    line = redis_ssot.sync.get_redis(decode_responses=True).execute("CLIENT", "INFO")
    return dict(f.split("=", 1) for f in line.split(" ") if "=" in f)


def command_connections() -> list:
    listing = redis_ssot.sync.get_redis(decode_responses=True).execute("CLIENT", "LIST")
    out = []
    for line in listing.splitlines():
        fields = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
        out.append({"id": fields.get("id"), "name": fields.get("name", "")})
    return out


def child(write: int) -> None:
    signal.alarm(CHILD_BUDGET_S)
    report = {}
    try:
        redis = redis_ssot.get_redis()
        report["instance_id"] = redis.instance_id

        async def calls() -> int:
            for i in range(50):
                await redis.set(f"fork:child:{os.getpid()}", str(i))
                assert await redis.get(f"fork:child:{os.getpid()}") == str(i).encode()
            return 50

        report["async_calls"] = asyncio.run(calls())
        blocking = redis_ssot.sync.get_redis()
        blocking.set(f"fork:child:{os.getpid()}:sync", "1")
        report["sync_get"] = blocking.get(f"fork:child:{os.getpid()}:sync").decode()
        info = connection_info(redis)
        report["id"] = info.get("id")
        report["name"] = info.get("name")
        report["clients"] = command_connections()
    except BaseException as e:  # reported to the parent, which fails the test
        report["error"] = repr(e)
    os.write(write, json.dumps(report).encode())
    os._exit(0)


def fork() -> tuple:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        child(write)
    os.close(write)
    return pid, read


def collect(pid: int, read: int) -> dict:
    # A child stuck before its alarm is set (in the fork hooks) is killed here.
    ready, _, _ = select.select([read], [], [], CHILD_BUDGET_S)
    if not ready:
        os.kill(pid, signal.SIGKILL)
    written = read_to_end(read)
    _, status = os.waitpid(pid, 0)
    report = json.loads(written) if written else {}
    report["status"] = status
    return report


def main() -> None:
    first_delay = float(sys.argv[1])
    more = int(sys.argv[2])
    started = threading.Event()
    stop = threading.Event()
    calls = [0]

    def caller() -> None:
        async def loop() -> None:
            redis = redis_ssot.get_redis()  # the process's first use
            while not stop.is_set():
                await redis.set("fork:parent", str(calls[0]))
                await redis.get("fork:parent")
                calls[0] += 1

        started.set()
        asyncio.run(loop())

    thread = threading.Thread(target=caller)
    thread.start()
    started.wait()
    time.sleep(first_delay)
    # A burst of forks back to back through the first use, collected afterwards.
    burst = [fork() for _ in range(BURST)]
    children = [collect(pid, read) for pid, read in burst]
    for _ in range(more):
        time.sleep(0.01)
        children.append(collect(*fork()))
    stop.set()
    thread.join()
    parent = redis_ssot.get_redis()
    print(json.dumps({
        "parent_instance_id": parent.instance_id,
        "parent_id": connection_info(parent).get("id"),
        "parent_calls": calls[0],
        "children": children,
    }))


if __name__ == "__main__":
    sys.exit(main())
