#!/usr/bin/env bash
# Runs every fuzz target (issue 12) for a set time and prints, per target, the inputs tried
# and the failures found.
#
#   bench/fuzz/run.sh              # 60 s per target
#   SECS=5 bench/fuzz/run.sh       # a smoke run
#   SECS=600 bench/fuzz/run.sh ssot-gateway   # one crate's targets only
#
# The targets are ordinary tests built on `ssot_testkit::fuzz`: in `./dev test` each runs a
# fixed number of inputs from a fixed seed; here SSOT_FUZZ_SECS makes each draw fresh random
# inputs until its time is up. A failure prints the smallest failing input: copy it into a
# named regression test next to the target.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECS="${SECS:-60}"
# crate, then the cargo test arguments that select its fuzz targets.
TARGETS=(
  "ssot-gateway|--lib protocol::fuzz_tests::fuzz_"
  "redis-ssot|--test it fuzz::fuzz_"
  "ssot-worker|--test it fuzz::fuzz_"
  "ssot-cli|--bin ssot config::fuzz_tests::fuzz_"
  "ssot-check|--test check fuzz::fuzz_"
)

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
status=0
for entry in "${TARGETS[@]}"; do
  crate="${entry%%|*}"
  read -r -a selector <<<"${entry#*|}"
  if [ $# -gt 0 ] && [[ " $* " != *" $crate "* ]]; then
    continue
  fi
  filter="${selector[-1]}"
  unset 'selector[-1]'
  echo "== $crate: ${SECS}s per target" >&2
  if ! SSOT_FUZZ_SECS="$SECS" cargo test -q -p "$crate" "${selector[@]}" -- "$filter" \
      --nocapture --test-threads 1 >>"$out" 2>&1; then
    status=1
  fi
done

printf '%-22s %12s %9s\n' target inputs failures
# libtest may print `test <name> ... ` on the same line first: take the match only.
grep -oE 'fuzz-target [^ ]+ inputs=[0-9]+ failures=[0-9]+' "$out" |
  sed -E 's/^fuzz-target ([^ ]+) inputs=([0-9]+) failures=([0-9]+)$/\1 \2 \3/' |
  awk '{ printf "%-22s %12d %9d\n", $1, $2, $3; total += $2; failed += $3 }
       END { printf "%-22s %12d %9d\n", "total", total, failed }'
if [ "$status" -ne 0 ]; then
  echo "some targets failed; their smallest failing inputs:" >&2
  grep -E -A12 '^(thread .* panicked|fuzz target)' "$out" >&2 || true
fi
exit "$status"
