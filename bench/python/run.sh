#!/usr/bin/env bash
# GET/SET through redis_ssot (Python) against redis.asyncio (redis-py, with and without
# hiredis), and the same calls through the Rust manager directly (the cost of crossing from
# Python to Rust): one asyncio loop, 1, 16 and 256 concurrent tasks, ONE redis-server started
# here on a free loopback port, one run. Contenders rotate order each round; the report shows
# each cell's median round. Prints Markdown on stdout (for BENCHMARKS.md).
#
# Usage: bench/python/run.sh      (about 4 minutes on 2 cores; run it on a quiet machine)
# Knobs: ROUNDS=3 DURATION_MS=1500 WARMUP_MS=300 CONCURRENCY=1,16,256
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION_MS=${DURATION_MS:-1500}
WARMUP_MS=${WARMUP_MS:-300}
CONCURRENCY=${CONCURRENCY:-1,16,256}
REDIS_PY_VERSION=8.1.0
HIREDIS_VERSION=3.3.0
MATURIN_VERSION=1.16.0

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
say() { echo "run.sh: $*" >&2; }

for tool in redis-server redis-benchmark redis-cli python3 cargo; do
    command -v "$tool" >/dev/null || { say "$tool not found"; exit 2; }
done

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "redis==$REDIS_PY_VERSION" \
    "hiredis==$HIREDIS_VERSION" "maturin==$MATURIN_VERSION" >&2
say "building redis_ssot (release) into bench/python/.venv"
(cd "$root" && VIRTUAL_ENV="$venv" "$venv/bin/maturin" develop --release -q >&2)
say "building ssot-bench (release) for the Rust manager's own cells"
cargo build --release --quiet -p ssot-bench --manifest-path "$root/Cargo.toml" >&2
bench="${CARGO_TARGET_DIR:-$root/target}/release/manager"

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$data" \
    --logfile "$data/redis.log" &
server=$!
stop() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"; }
trap stop EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
url="redis://127.0.0.1:$port"
redis-benchmark -p "$port" -q -t set -n 200000 -r 10000 -d 3 >/dev/null

mkdir -p "$here/results-raw"
results="$here/results-raw/$(date -u +%Y%m%dT%H%M%SZ).jsonl"
{
    echo "# $(date -u +%FT%TZ) $(nproc) cores, rounds=$ROUNDS duration_ms=$DURATION_MS warmup_ms=$WARMUP_MS"
    echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$results"

contenders=(redis_ssot redis-py redis-py-hiredis manager)
common=(--duration-ms "$DURATION_MS" --warmup-ms "$WARMUP_MS" --concurrency "$CONCURRENCY")
for round in $(seq "$ROUNDS"); do
    for i in "${!contenders[@]}"; do
        who=${contenders[$(((i + round - 1) % ${#contenders[@]}))]}
        say "round $round/$ROUNDS: $who"
        if [[ $who == manager ]]; then
            for clients in ${CONCURRENCY//,/ }; do
                for op in set get; do
                    "$bench" run --url "$url" --contender manager --concurrency "$clients" \
                        --op "$op" --duration-ms "$DURATION_MS" --warmup-ms "$WARMUP_MS" >>"$results"
                done
            done
        else
            "$venv/bin/python" "$here/load.py" run --url "$url" --contender "$who" "${common[@]}" >>"$results"
        fi
    done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results"
say "raw results: $results"
"$venv/bin/python" "$here/load.py" report "$results"
