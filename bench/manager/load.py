"""GET/SET closed-loop load through redis-py's asyncio client, the Python contender.

Same shape as the Rust driver (bench/src/load.rs): `concurrency` tasks on one event loop share
one `redis.asyncio.Redis` (its connection pool opens a connection per concurrent command), each
sends one command and awaits the reply, a warm-up and then a measured window. Prints one JSON
line per cell, in the same fields as `manager run`.
"""

import argparse
import asyncio
import json
import time

import redis.asyncio

KEYSPACE = 10_000
VALUE = b"xxx"
STRIDE = 7_919
KEYS = [f"key:{n:012}" for n in range(KEYSPACE)]


def percentile(sorted_samples, p):
    if not sorted_samples:
        return 0
    rank = -(-p * len(sorted_samples) // 1)  # ceil
    rank = min(max(int(rank), 1), len(sorted_samples))
    return sorted_samples[rank - 1]


async def worker(client, op, task, measure_from, end, samples):
    n = (task * STRIDE) % KEYSPACE
    call = client.set if op == "set" else client.get
    perf = time.perf_counter_ns
    while True:
        start = perf()
        if start >= end:
            return
        if op == "set":
            await call(KEYS[n], VALUE)
        else:
            await call(KEYS[n])
        if start >= measure_from:
            samples.append(perf() - start)
        n = (n + STRIDE) % KEYSPACE


async def cell(client, op, concurrency, warmup_s, window_s):
    measure_from = time.perf_counter_ns() + int(warmup_s * 1e9)
    end = measure_from + int(window_s * 1e9)
    per_task = [[] for _ in range(concurrency)]
    workers = asyncio.gather(
        *(worker(client, op, t, measure_from, end, per_task[t]) for t in range(concurrency))
    )
    await asyncio.sleep(max(0, measure_from - time.perf_counter_ns()) / 1e9)
    cpu_before = time.process_time_ns()
    await workers
    cpu = time.process_time_ns() - cpu_before
    samples = sorted(s for task in per_task for s in task)
    return {
        "contender": "python",
        "op": op,
        "concurrency": concurrency,
        "ops": len(samples),
        "seconds": window_s,
        "ops_per_sec": len(samples) / window_s,
        "p50_us": percentile(samples, 0.50) / 1e3,
        "p99_us": percentile(samples, 0.99) / 1e3,
        "cpu_us_per_op": cpu / 1e3 / len(samples) if samples else None,
    }


async def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", default="1,16,256")
    parser.add_argument("--op", default="set,get")
    parser.add_argument("--duration-ms", type=int, default=3000)
    parser.add_argument("--warmup-ms", type=int, default=500)
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    # redis-py's pool opens one connection per concurrent command; its default cap (100)
    # would fail the 256-task cell rather than measure it.
    client = redis.asyncio.Redis.from_url(args.url, max_connections=max(concurrencies))
    try:
        for concurrency in concurrencies:
            for op in args.op.split(","):
                result = await cell(
                    client, op, concurrency, args.warmup_ms / 1e3, args.duration_ms / 1e3
                )
                print(json.dumps(result), flush=True)
    finally:
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
