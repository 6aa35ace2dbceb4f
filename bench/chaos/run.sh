#!/usr/bin/env bash
# Randomized faults with exact accounting (issue 12): for each topology, two `ssot serve`, one
# `ssot worker` and users publishing and chatting for DURATION seconds while random faults hit
# Redis (SIGKILL, SIGSTOP/SIGCONT, restart on the same port; proxy blackholes and delays on
# one server), the gateways and the worker; then every acknowledged event and chat message
# is accounted for (see bench/src/chaos/mod.rs). Exit 1 when a guarantee broke.
#   bench/chaos/run.sh                         # 600 s on one Redis, then on the Cluster
#   DURATION=60 TOPOLOGIES=cluster SEED=42 bench/chaos/run.sh   # replay one schedule
#   PROFILE=debug bench/chaos/run.sh           # without a release build
# Results: bench/results/chaos/<UTC timestamp>.txt (the faults as applied, figures, PASS/FAIL).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-600}
TOPOLOGIES=${TOPOLOGIES:-"single cluster"}
PROFILE=${PROFILE:-release}
SEED=${SEED:-}
flags=()
if [ "$PROFILE" = release ]; then flags=(--release); fi
cargo build "${flags[@]}" -q -p ssot-cli --bin ssot -p ssot-bench --bin chaos
# Run copies: a rebuild during a long run must not change the binary a restart picks up.
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
cp target/"$PROFILE"/ssot target/"$PROFILE"/chaos "$bin"/
mkdir -p bench/results/chaos
out="bench/results/chaos/$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "# bench/chaos/run.sh DURATION=$DURATION PROFILE=$PROFILE commit $(git rev-parse --short HEAD) on $(nproc) cores"
  echo "# load before: $(uptime)"
} >> "$out"
status=0
for topology in $TOPOLOGIES; do
  echo "## $topology" >> "$out"
  "$bin"/chaos --ssot "$bin"/ssot --topology "$topology" \
    --seconds "$DURATION" ${SEED:+--seed "$SEED"} 2>&1 | tee -a "$out" || status=1
  echo "# load after: $(uptime)" >> "$out"
done
echo "results: $out" >&2
exit $status
