#!/usr/bin/env bash
# Benchmark of `ssot check` beside ruff (TID251 banned-api) and semgrep, on real Python
# code from PyPI and a vendored Rust dependency tree. Everything downloaded lives in
# bench/check/.venv (ignored by git). Results: bench/results/check/<UTC timestamp>.md (commit
# the file of every run BENCHMARKS.md cites), copied into its `## ssot check` section.
#
#   bash bench/check/run.sh            # RUNS=5 by default
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"

# The versions BENCHMARKS.md reports; pip leaves them alone when they are already installed,
# and replaces any other version an older venv holds.
ruff_version=0.17.6
semgrep_version=1.182.0
if [ ! -x "$venv/bin/pip" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
fi
"$venv/bin/pip" install -q "ruff==$ruff_version" "semgrep==$semgrep_version"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release -q -p ssot-cli --bin ssot --manifest-path "$root/Cargo.toml"

exec "$venv/bin/python" "$here/bench.py" --ssot "$CARGO_TARGET_DIR/release/ssot" --venv "$venv" --runs "${RUNS:-5}"
