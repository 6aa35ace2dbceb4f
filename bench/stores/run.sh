#!/usr/bin/env bash
# Ops/s, p50/p99 latency and client / server CPU per operation of each typed store's hot call
# beside the raw redis-rs command it wraps (bench/src/bin/stores/main.rs):
#   UserCache get / set     vs raw GET / SET EX
#   RateLimiter check       vs raw EVALSHA of an INCR + PEXPIRE script (and raw INCR)
#   Events append           vs raw XADD + PUBLISH in one pipeline
#   Tokens verify uncached  vs jsonwebtoken::decode + EXISTS;  cached vs EXISTS alone
# plus, for the script-backed stores, the store's own script sent raw by EVALSHA. Everything
# runs in one process against ONE redis-server started here on a free loopback port; every
# round runs each contender of each pair once, in an order rotated per round, and the table
# shows each cell's median round. The whole run is done twice, in two processes: with the
# Prometheus recorder the gateway installs (metrics on, the real path) and without one
# (metrics off); each gets its own table. Prints Markdown on stdout.
#
# Usage: bench/stores/run.sh             (from anywhere; about 3 minutes on 2 cores)
# Knobs (environment): ROUNDS=3 DURATION_MS=2000 WARMUP_MS=500 CONCURRENCY=64
#                      WORKER_THREADS=2 (Tokio workers of the load generator)
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION_MS=${DURATION_MS:-2000}
WARMUP_MS=${WARMUP_MS:-500}
CONCURRENCY=${CONCURRENCY:-64}
WORKER_THREADS=${WORKER_THREADS:-2}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
say() { echo "run.sh: $*" >&2; }

for tool in redis-server redis-cli python3 cargo; do
    if ! command -v "$tool" >/dev/null; then
        say "$tool not found (redis-*: apt-get install -y redis-server)"
        exit 2
    fi
done

say "building ssot-bench (release)"
cargo build --release --quiet -p ssot-bench --bin stores --manifest-path "$root/Cargo.toml" >&2
bench="${CARGO_TARGET_DIR:-$root/target}/release/stores"

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

# Raw results are kept (bench/results/stores/<UTC timestamp>-metrics-{on,off}.jsonl, a few KB):
# commit the files of every run BENCHMARKS.md cites.
mkdir -p "$root/bench/results/stores"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
for metrics in on off; do
results="$root/bench/results/stores/$stamp-metrics-$metrics.jsonl"
{
    echo "# $(date -u +%FT%TZ) $(nproc) cores, rounds=$ROUNDS duration_ms=$DURATION_MS warmup_ms=$WARMUP_MS concurrency=$CONCURRENCY worker_threads=$WORKER_THREADS"
    echo "# before: load average $(cut -d' ' -f1-3 /proc/loadavg), rustc processes $(pgrep -c rustc || true)"
} >"$results"

"$bench" run --url "$url" --concurrency "$CONCURRENCY" --rounds "$ROUNDS" \
    --duration-ms "$DURATION_MS" --warmup-ms "$WARMUP_MS" --worker-threads "$WORKER_THREADS" \
    --metrics "$metrics" >>"$results"

echo "# after: load average $(cut -d' ' -f1-3 /proc/loadavg), rustc processes $(pgrep -c rustc || true)" >>"$results"
say "raw results: $results"
grep '^#' "$results" | sed 's/^# /run.sh: /' >&2

if [[ $metrics == on ]]; then
    echo "### Metrics on (the Prometheus recorder \`ssot serve\` installs: the real path)"
else
    echo "### Metrics off (no recorder; not the path \`ssot serve\` takes)"
fi
echo
"$bench" report "$results"
echo
done
