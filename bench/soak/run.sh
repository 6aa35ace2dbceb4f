#!/usr/bin/env bash
# The soak (issue 12): 10,000 sockets on one `ssot serve` (held by PROCS `soak_clients`
# processes: one process may hold 20,000 open files here), a steady publish and chat load, a
# Redis SIGKILL + restart on the same port every 5 minutes, for DURATION seconds (1 hour).
# Every 10 s: RSS, fds and threads of gateway and worker, the gateway's connections, Redis
# memory. Pass: over the last half, each series' drift per 30 min is within its noise.
#   bench/soak/run.sh                       # 1 hour
#   DURATION=1200 bench/soak/run.sh         # a shorter run: name it as such
# Results: bench/results/soak/<UTC timestamp>.jsonl (+ .clientsN.jsonl) and the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROFILE=${PROFILE:-release}
flags=()
if [ "$PROFILE" = release ]; then flags=(--release); fi
cargo build "${flags[@]}" -q -p ssot-cli --bin ssot -p ssot-bench --bin soak_clients
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
cp target/"$PROFILE"/ssot target/"$PROFILE"/soak_clients "$bin"/
mkdir -p bench/results/soak
export OUT="bench/results/soak/$(date -u +%Y%m%dT%H%M%SZ).jsonl" BIN="$bin"
echo "# bench/soak/run.sh DURATION=${DURATION:-3600} PROFILE=$PROFILE commit $(git rev-parse --short HEAD); load before: $(uptime)" > "$OUT.md"
python3 bench/soak/soak.py | tee -a "$OUT.md"
