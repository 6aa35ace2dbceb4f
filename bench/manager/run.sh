#!/usr/bin/env bash
# GET/SET ops/s and p50/p99 latency at 1, 16 and 256 concurrent clients, through:
#   manager          redis_ssot::RedisManager::query, with the Prometheus recorder the
#                    gateway installs (the real path)       (bench/src/contenders.rs)
#   manager-metrics-off  the same without a recorder (metrics calls are no-ops)
#   raw              one redis-rs MultiplexedConnection       (bench/src/contenders.rs)
#   python           redis-py redis.asyncio, one event loop   (bench/manager/load.py)
#   redis-benchmark  the C tool, same client counts and keys
# all against ONE redis-server started here on a free loopback port, in one run. Every
# (round, clients, op) cell runs the four contenders back to back, in an order rotated each
# round; the table shows each cell's median round. Prints Markdown on stdout.
#
# Usage: bench/manager/run.sh            (from anywhere; about 5 minutes on 2 cores)
# Knobs (environment): ROUNDS=5 DURATION_MS=1500 WARMUP_MS=300 CONCURRENCY=1,16,256
#                      WORKER_THREADS=2 (Tokio workers of the Rust load generator)
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION_MS=${DURATION_MS:-1500}
WARMUP_MS=${WARMUP_MS:-300}
CONCURRENCY=${CONCURRENCY:-1,16,256}
WORKER_THREADS=${WORKER_THREADS:-2}
REDIS_PY_VERSION=8.1.0

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
say() { echo "run.sh: $*" >&2; }

for tool in redis-server redis-benchmark redis-cli python3 cargo; do
    if ! command -v "$tool" >/dev/null; then
        say "$tool not found (redis-*: apt-get install -y redis-server; python3 with venv)"
        exit 2
    fi
done

say "building ssot-bench (release)"
cargo build --release --quiet -p ssot-bench --manifest-path "$root/Cargo.toml" >&2
bench="${CARGO_TARGET_DIR:-$root/target}/release/manager"

venv="$root/bench/.venv"
if ! "$venv/bin/python" -c "import redis, sys; sys.exit(redis.__version__ != '$REDIS_PY_VERSION')" 2>/dev/null; then
    say "installing redis-py $REDIS_PY_VERSION into bench/.venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "redis==$REDIS_PY_VERSION" >&2
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$data" \
    --logfile "$data/redis.log" &
server=$!
stop() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$data"
}
trap stop EXIT
for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.05
done
url="redis://127.0.0.1:$port"
say "redis-server $(redis-server --version | grep -o 'v=[^ ]*') on $url"

# Fill every key GET will ask for (redis-benchmark -r names keys key:%012d, as the clients do).
redis-benchmark -p "$port" -q -t set -n 200000 -r 10000 -d 3 >/dev/null

# Raw results are kept (bench/results/manager/<UTC timestamp>.jsonl, a few KB): commit the
# file of every run BENCHMARKS.md cites.
mkdir -p "$root/bench/results/manager"
results="$root/bench/results/manager/$(date -u +%Y%m%dT%H%M%SZ).jsonl"
{
    echo "# $(date -u +%FT%TZ) $(nproc) cores, rounds=$ROUNDS duration_ms=$DURATION_MS warmup_ms=$WARMUP_MS worker_threads=$WORKER_THREADS"
    echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$results"

contenders=(manager manager-metrics-off raw python redis-benchmark)
common=(--duration-ms "$DURATION_MS" --warmup-ms "$WARMUP_MS")
for round in $(seq "$ROUNDS"); do
    for clients in ${CONCURRENCY//,/ }; do
        for op in set get; do
            for i in "${!contenders[@]}"; do
                who=${contenders[$(((i + round - 1) % ${#contenders[@]}))]}
                say "round $round/$ROUNDS: $op x$clients $who"
                if [[ $who == python ]]; then
                    "$venv/bin/python" "$here/load.py" --url "$url" \
                        --concurrency "$clients" --op "$op" "${common[@]}" >>"$results"
                elif [[ $who == manager-metrics-off ]]; then
                    "$bench" run --url "$url" --contender manager --metrics off \
                        --concurrency "$clients" --op "$op" --worker-threads "$WORKER_THREADS" \
                        "${common[@]}" >>"$results"
                else
                    "$bench" run --url "$url" --contender "$who" --concurrency "$clients" \
                        --op "$op" --worker-threads "$WORKER_THREADS" "${common[@]}" >>"$results"
                fi
            done
        done
    done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results"
say "raw results: $results"

"$bench" report "$results"
