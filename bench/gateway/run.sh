#!/usr/bin/env bash
# The gateway against its peers with one workload, in one run, on this machine:
#   ssot-gateway  `ssot serve` (the shipped binary, defaults, no config file)
#   socket.io     Node.js socket.io 4 + @socket.io/redis-streams-adapter, one process
#   fastapi       FastAPI + uvicorn (one worker) + redis-py, one shared Pub/Sub connection
# 2,000 users × 5 sockets = 10,000 WebSockets held by 4 load-generator processes
# (bench/src/bin/gateway_load/main.rs; socket.io spoken as Engine.IO v4 text frames over plain
# WebSocket), one keep-alive HTTP publisher at concurrency 64. Per contender: RSS per idle
# socket, p50/p99/max publish→receive latency at 500 and 2,000 publishes/s, delivered
# events/s at saturation. Then one gateway holds 19,000 idle sockets (8 processes).
# One redis-server started here on a free loopback port (flushed between contenders).
# socket.io answers a publish before writing to Redis, so at saturation it is overdriven
# with a growing backlog: it is also measured at a ladder of fixed rates (SOCKETIO_RATES);
# the rate it sustains is the highest whose phase shows publish/s within 1% of the target,
# 5.0 deliveries per publish and a p99 under 1 s, and its delivered/s there is reported
# beside the saturation figure.
# Prints the Markdown table on stdout; raw JSON lines are kept in
# bench/results/gateway/<UTC timestamp>/ (commit the directory of every run BENCHMARKS.md
# cites).
#
# Usage: bench/gateway/run.sh          (about 6 minutes on 2 cores, after installs/build)
# Knobs (environment): WINDOW_SECS=10 WARMUP_SECS=2 CONTENDERS="ssot socketio fastapi"
#                      HOLD=19000 (0 skips the idle-socket check)
#                      SOCKETIO_RATES=500,1000,1500,2000,3000 (socket.io's fixed-rate ladder)
#                      WAIT_FOR_BUILDS=300 (seconds to wait for other rustc jobs to end)
set -euo pipefail

WINDOW_SECS=${WINDOW_SECS:-10}
WARMUP_SECS=${WARMUP_SECS:-2}
CONTENDERS=${CONTENDERS:-"ssot socketio fastapi"}
HOLD=${HOLD:-19000}
WAIT_FOR_BUILDS=${WAIT_FOR_BUILDS:-300}
SOCKETIO_RATES=${SOCKETIO_RATES:-500,1000,1500,2000,3000}
SECRET=bench-jwt-secret-0123456789abcdef
SERVICE_KEY=bench-service-key-0123456789
TOKEN=bench-static-token

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
results="$root/bench/results/gateway/$(date -u +%Y%m%dT%H%M%SZ)"
say() { echo "run.sh: $*" >&2; }

for tool in redis-server redis-cli python3 node npm cargo curl; do
    command -v "$tool" >/dev/null || { say "$tool not found"; exit 2; }
done
ulimit -n 20000 2>/dev/null || true
if [ "$(ulimit -n)" -lt 20000 ]; then
    say "open files capped at $(ulimit -n); the 19,000-socket check needs 20000"
fi

if [ ! -d "$here/socketio/node_modules/socket.io" ]; then
    say "npm ci (bench/gateway/socketio)"
    (cd "$here/socketio" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
venv="$root/bench/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c "import fastapi, uvicorn, uvloop, websockets, redis" 2>/dev/null; then
    say "pip install bench/gateway/fastapi/requirements.txt into bench/.venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/fastapi/requirements.txt" >&2
fi

say "building ssot and gateway_load (release)"
cargo build --release --quiet -p ssot-cli --bin ssot -p ssot-bench --bin gateway_load \
    --manifest-path "$root/Cargo.toml" >&2
bin="${CARGO_TARGET_DIR:-$root/target}/release"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

mkdir -p "$results"
data=$(mktemp -d)
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$data" \
    --maxclients 1000 --logfile "$data/redis.log" &
redis_pid=$!
server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
cleanup() {
    stop_server
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT
for _ in $(seq 100); do
    redis-cli -p "$rport" ping >/dev/null 2>&1 && break
    sleep 0.05
done
redis_url="redis://127.0.0.1:$rport"
say "redis-server $(redis-server --version | awk '{print $3}') on port $rport"

# start_server <contender> <port>: starts it in the background, sets server_pid.
start_server() {
    local port=$2 log="$results/$1-server.log"
    case $1 in
        ssot)
            # From the scratch dir: no ssot.toml is picked up.
            (cd "$data" && SSOT_JWT_SECRET=$SECRET SSOT_SERVICE_KEY=$SERVICE_KEY SSOT_LOG=warn \
                exec "$bin/ssot" serve --redis "$redis_url" --listen "127.0.0.1:$port") >"$log" 2>&1 &
            ;;
        socketio)
            PORT=$port REDIS_URL=$redis_url BENCH_TOKEN=$TOKEN SSOT_SERVICE_KEY=$SERVICE_KEY \
                node "$here/socketio/server.js" >"$log" 2>&1 &
            ;;
        fastapi)
            REDIS_URL=$redis_url BENCH_TOKEN=$TOKEN SSOT_SERVICE_KEY=$SERVICE_KEY \
                "$venv/bin/python" -m uvicorn app:app --app-dir "$here/fastapi" --host 127.0.0.1 \
                --port "$port" --workers 1 --log-level warning --no-access-log >"$log" 2>&1 &
            ;;
    esac
    server_pid=$!
    for _ in $(seq 200); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" != 000 ]; then
            return 0
        fi
        sleep 0.05
    done
    say "$1 did not start; see $log"
    exit 1
}

# measure <contender> <table name> <proto> [extra gateway_load args...]
measure() {
    local contender=$1 name=$2 proto=$3
    shift 3
    local port
    port=$(free_port)
    redis-cli -p "$rport" flushall >/dev/null
    start_server "$contender" "$port"
    # Concurrent builds distort the figures: wait up to 5 minutes for them, then say so.
    local waited=0
    while [ "$(pgrep -c rustc || true)" != 0 ] && [ "$waited" -lt "$WAIT_FOR_BUILDS" ]; do
        say "waiting for other builds (rustc running) before measuring $name"
        sleep 10
        waited=$((waited + 10))
    done
    if [ "$(pgrep -c rustc || true)" != 0 ]; then
        echo "$name measured while rustc was running" >>"$results/notes.txt"
    fi
    say "$name: measuring (pid $server_pid)"
    "$bin/gateway_load" run --contender "$name" --proto "$proto" \
        --ws "ws://127.0.0.1:$port" --http "http://127.0.0.1:$port" --server-pid "$server_pid" \
        --secret "$SECRET" --token "$TOKEN" --service-key "$SERVICE_KEY" \
        --window-secs "$WINDOW_SECS" --warmup-secs "$WARMUP_SECS" "$@" >>"$results/$name.json"
    stop_server
    sleep 2 # let the closed sockets' TIME_WAIT ports spread out
}

for contender in $CONTENDERS; do
    case $contender in
        ssot) measure ssot ssot-gateway ssot ;;
        socketio) measure socketio socket.io socketio --rates "$SOCKETIO_RATES" ;;
        fastapi) measure fastapi fastapi plain ;;
    esac
done
if [ "$HOLD" -gt 0 ]; then
    measure ssot ssot-gateway-hold ssot --idle-only --users $((HOLD / 5)) --procs 8
fi

echo "Run: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, redis-server on port $rport," \
    "$(node --version), $("$venv/bin/python" --version)"
echo
"$bin/gateway_load" report "$results"/*.json
say "raw results: $results"
if [ -s "$results/notes.txt" ]; then
    echo
    sed 's/^/Note: /' "$results/notes.txt"
fi
