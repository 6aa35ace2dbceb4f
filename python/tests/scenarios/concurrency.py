"""10 coroutines x 1,000 calls, 4 threads each with its own loop, then a forked child: prints
a JSON report of what CLIENT LIST showed. Run by test_runtime.py in its own interpreter."""

import asyncio
import json
import os
import sys
import threading

import redis_ssot
from child_report import read_to_end

APP = "conc"


def client_names(redis) -> list:
    listing = redis.with_options(blocking=True, decode_responses=True).execute("CLIENT", "LIST")
    names = []
    for line in listing.splitlines():
        fields = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)
        names.append(fields.get("name", ""))
    return sorted(names)


async def hammer(redis, worker: int, calls: int) -> int:
    done = 0
    for i in range(calls):
        key = f"k:{worker}:{i % 10}"
        await redis.set(key, str(i))
        assert await redis.get(key) == str(i).encode()
        done += 1
    return done


def thread_main(redis, worker: int, out: list) -> None:
    loop = asyncio.new_event_loop()
    try:
        out.append(loop.run_until_complete(hammer(redis, 100 + worker, 250)))
    finally:
        loop.close()


def main() -> None:
    redis = redis_ssot.init(os.environ["REDIS_URL"], app=APP)
    report = {"parent_id": redis.instance_id}

    async def coroutines() -> list:
        return await asyncio.gather(*(hammer(redis, w, 1000) for w in range(10)))

    report["coroutine_calls"] = sum(asyncio.run(coroutines()))
    done: list = []
    threads = [threading.Thread(target=thread_main, args=(redis, t, done)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report["thread_calls"] = sum(done)
    report["before_fork"] = client_names(redis)

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        child = {}
        try:
            handle = redis_ssot.get_redis()
            child["id"] = handle.instance_id
            child["calls"] = asyncio.run(hammer(handle, 999, 200))
            child["clients"] = client_names(handle)
        except BaseException as e:  # reported to the parent, which fails the test
            child["error"] = repr(e)
        os.write(write, json.dumps(child).encode())
        os._exit(0)
    os.close(write)
    child = read_to_end(read)
    os.waitpid(pid, 0)
    report["child"] = json.loads(child)
    # The parent still works after the fork, on its own connections.
    report["parent_after"] = asyncio.run(hammer(redis, 7, 50))
    report["after_fork"] = client_names(redis)
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
