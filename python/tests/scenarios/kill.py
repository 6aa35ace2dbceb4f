"""Redis SIGKILLed while calls are in flight: prints a JSON report of what each call raised,
how long it took, the largest lag of a ticker task, and whether calls work again after a
restart on the same port. The kill and restart are done by the test (signals over stdin/out)."""

import asyncio
import json
import os
import sys
import time

import redis_ssot

TIMEOUT_MS = 500


async def main() -> None:
    redis = redis_ssot.init(os.environ["REDIS_URL"], app="kill", command_timeout_ms=TIMEOUT_MS,
                            connect_timeout_ms=TIMEOUT_MS)
    assert await redis.wait_ready(5)
    lags = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.monotonic()
            lags.append(now - last - 0.005)
            last = now

    tick = asyncio.create_task(ticker())
    calls = []
    running = True

    async def caller(n: int) -> None:
        while running:
            t0 = time.monotonic()
            try:
                await redis.incr(f"counter:{n}")
                calls.append({"ok": True, "elapsed": time.monotonic() - t0})
            except redis_ssot.RedisUnavailable as e:
                calls.append({"unavailable": True, "retry_after": e.retry_after,
                              "elapsed": time.monotonic() - t0})
                await asyncio.sleep(0.01)
            except Exception as e:  # anything else fails the test
                calls.append({"other": repr(e), "elapsed": time.monotonic() - t0})

    callers = [asyncio.create_task(caller(n)) for n in range(10)]
    await asyncio.sleep(0.2)
    print("KILL", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    ok_before = sum(1 for c in calls if c.get("ok"))
    await asyncio.sleep(1.5)
    running = False
    await asyncio.gather(*callers)
    print("RESTART", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    recovered_after = None
    t0 = time.monotonic()
    while time.monotonic() - t0 < 15:
        try:
            await redis.set("k", "back")
            if await redis.get("k") == b"back":
                recovered_after = time.monotonic() - t0
                break
        except redis_ssot.RedisUnavailable:
            await asyncio.sleep(0.05)
    stop.set()
    await tick
    print("REPORT " + json.dumps({
        "calls": calls, "ok_before": ok_before, "recovered_after": recovered_after,
        "max_lag": max(lags), "ticks": len(lags), "same_id": redis.instance_id ==
        redis_ssot.get_redis().instance_id,
    }), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
