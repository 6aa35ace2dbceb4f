#!/usr/bin/env bash
# End-to-end chat benchmark (issue 5): 1,000 users, one socket each, through `ssot serve` and
# `ssot worker --agent demo` (no artificial step delay) on one fresh redis-server.
#   bench/chat/run.sh            # prints JSON lines and a Markdown table
set -euo pipefail
cd "$(dirname "$0")/../.."
USERS=${USERS:-1000}
SECS=${SECS:-15}
RATES=${RATES:-"100 300"}
cargo build --release -q -p ssot-cli --bin ssot -p ssot-bench --bin chat_e2e
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
gw=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" --daemonize no >/dev/null &
redis_pid=$!
cat > "$work/ssot.toml" <<TOML
[gateway]
message-rate = 1000000
message-burst = 1000000
inbound-rate = 1000000
inbound-burst = 1000000
[worker]
agent = "demo"
demo-step-ms = 0
concurrency = 64
TOML
export SSOT_JWT_SECRET=bench-secret-0123456789abcdef0123 SSOT_SERVICE_KEY=bench-service-key-0123 SSOT_LOG=warn
sleep 0.5
target/release/ssot --config "$work/ssot.toml" serve --listen "127.0.0.1:$gw" --redis "redis://127.0.0.1:$port" & gw_pid=$!
target/release/ssot --config "$work/ssot.toml" worker --redis "redis://127.0.0.1:$port" & worker_pid=$!
trap 'kill $gw_pid $worker_pid $redis_pid 2>/dev/null; rm -rf "$work"' EXIT
sleep 1
# Raw results are kept (bench/results/chat/<UTC timestamp>.jsonl, a few lines): commit the
# file of every run BENCHMARKS.md cites.
mkdir -p bench/results/chat
out="bench/results/chat/$(date -u +%Y%m%dT%H%M%SZ).jsonl"
target/release/chat_e2e --ws "ws://127.0.0.1:$gw/v1/ws" --secret "$SSOT_JWT_SECRET" --users "$USERS" saturate --seconds "$SECS" | tee -a "$out"
for r in $RATES; do
  target/release/chat_e2e --ws "ws://127.0.0.1:$gw/v1/ws" --secret "$SSOT_JWT_SECRET" --users "$USERS" rate --per-sec "$r" --seconds "$SECS" | tee -a "$out"
done
echo "raw results: $out" >&2
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if not l.startswith("#")]
print("| mode | offered/s | users | completed | runs/s | p50 ms | p99 ms | max ms | unfinished |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r['mode']} | {r['offered_per_sec'] or '-'} | {r['users']} | {r['completed']} | {r['runs_per_sec']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['unfinished']} |")
PY
