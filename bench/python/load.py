"""GET/SET through redis_ssot against redis.asyncio (redis-py, with and without hiredis), one
asyncio loop, closed loop: `concurrency` tasks each send one command and await its reply.

    load.py run --url URL --contender redis_ssot|redis-py|redis-py-hiredis \
        [--concurrency 1,16,256] [--op set,get] [--duration-ms 1500] [--warmup-ms 300]
    load.py report RESULTS.jsonl

`run` prints one JSON line per cell in the fields of bench/manager (contender, op,
concurrency, ops_per_sec, p50_us, p99_us, cpu_us_per_op), so the Rust manager's own cells
(`manager run --contender manager`) sit in the same file. `report` prints Markdown tables:
throughput with the ratios the floors are about, latency and client CPU per op.
"""

import argparse
import asyncio
import importlib.util
import json
import statistics
import sys
from pathlib import Path

CONTENDERS = ["redis_ssot", "redis-py", "redis-py-hiredis", "manager"]

# The closed-loop driver of bench/manager/load.py (client-agnostic: it awaits `client.set` and
# `client.get`), so both Python benches measure the same way.
_spec = importlib.util.spec_from_file_location(
    "manager_load", Path(__file__).resolve().parent.parent / "manager" / "load.py"
)
assert _spec and _spec.loader
manager_load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(manager_load)


async def cell(contender, client, op, concurrency, warmup_s, window_s):
    # Client CPU is the whole process's (the Rust runtime's threads included).
    result = await manager_load.cell(client, op, concurrency, warmup_s, window_s)
    result["contender"] = contender
    return result


def make_client(contender, url, max_tasks):
    if contender == "redis_ssot":
        import redis_ssot

        return redis_ssot.init(url, app="bench"), None
    import redis.asyncio
    from redis.asyncio.connection import Connection

    if contender == "redis-py-hiredis":
        from redis._parsers import _AsyncHiredisParser as parser
    else:
        from redis._parsers import _AsyncRESP2Parser as parser
    pool = redis.asyncio.ConnectionPool.from_url(
        url, max_connections=max_tasks, connection_class=Connection, parser_class=parser
    )
    client = redis.asyncio.Redis(connection_pool=pool)
    return client, client


async def run(args):
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    client, closable = make_client(args.contender, args.url, max(concurrencies))
    if args.contender == "redis_ssot":
        assert await client.wait_ready(5), "redis_ssot did not connect"
    try:
        for concurrency in concurrencies:
            for op in args.op.split(","):
                result = await cell(args.contender, client, op, concurrency,
                                    args.warmup_ms / 1e3, args.duration_ms / 1e3)
                print(json.dumps(result), flush=True)
    finally:
        if closable is not None:
            await closable.aclose()


def report(path):
    cells = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            c = json.loads(line)
            cells.setdefault((c["op"], c["concurrency"], c["contender"]), []).append(c)
    med = {k: sorted(v, key=lambda c: c["ops_per_sec"])[len(v) // 2] for k, v in cells.items()}
    keys = sorted({(op, n) for op, n, _ in med})
    print("| op | tasks | " + " | ".join(f"{c} ops/s" for c in CONTENDERS)
          + " | ssot/redis-py | ssot/hiredis | ssot CPU/op vs redis-py |")
    print("|" + "---|" * (len(CONTENDERS) + 5))
    for op, n in keys:
        row = [med.get((op, n, c)) for c in CONTENDERS]
        ops = ["%.0f" % r["ops_per_sec"] if r else "-" for r in row]
        ssot, py, hi = row[0], row[1], row[2]
        ratio = lambda a, b: "%.2fx" % (a["ops_per_sec"] / b["ops_per_sec"]) if a and b else "-"
        cpu = ("%.2f" % (ssot["cpu_us_per_op"] / py["cpu_us_per_op"])
               if ssot and py and ssot["cpu_us_per_op"] and py["cpu_us_per_op"] else "-")
        print(f"| {op} | {n} | " + " | ".join(ops) + f" | {ratio(ssot, py)} | {ratio(ssot, hi)} | {cpu} |")
    print()
    print("| op | tasks | contender | p50 µs | p99 µs | CPU µs/op |")
    print("|---|---|---|---|---|---|")
    for op, n in keys:
        for c in CONTENDERS:
            r = med.get((op, n, c))
            if r:
                cpu = r.get("cpu_us_per_op")
                print(f"| {op} | {n} | {c} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | "
                      + ("%.1f" % cpu if cpu else "-") + " |")
    print()
    print("Floors (issue 11): ssot/redis-py >= 3x at 16 and 256 tasks, >= 1.5x at 1; CPU/op <= 1/3.")
    print(f"Rounds per cell: {statistics.median(len(v) for v in cells.values()):.0f} (median round shown).")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--url", required=True)
    r.add_argument("--contender", choices=CONTENDERS[:3], required=True)
    r.add_argument("--concurrency", default="1,16,256")
    r.add_argument("--op", default="set,get")
    r.add_argument("--duration-ms", type=int, default=1500)
    r.add_argument("--warmup-ms", type=int, default=300)
    p = sub.add_parser("report")
    p.add_argument("results")
    args = parser.parse_args()
    if args.command == "run":
        asyncio.run(run(args))
    else:
        report(args.results)


if __name__ == "__main__":
    sys.exit(main())
