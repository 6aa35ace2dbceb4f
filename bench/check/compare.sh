#!/usr/bin/env bash
# Compares the JSON output of two `ssot` binaries on the benchmark corpus (set up by
# run.sh): both trees with the benchmark config, and the Python tree with stress.toml,
# each with and without the prefilter. Exits 1 if any output differs; the differing
# documents are left in $OUT (default /tmp/ssot-compare).
#
#   bash bench/check/compare.sh OLD_SSOT NEW_SSOT
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
old="$(realpath "$1")"
new="$(realpath "$2")"
base="$here/.venv/corpus"
out="${OUT:-/tmp/ssot-compare}"
mkdir -p "$out"
cp "$here/stress.toml" "$base/stress.toml"
cd "$base"
status=0
for config in ssot.toml stress.toml; do
    for tree in python rust; do
        [ "$config" = stress.toml ] && [ "$tree" = rust ] && continue
        for prefilter in "" --no-prefilter; do
            name="$tree-${config%.toml}${prefilter}"
            "$old" check --config "$config" $prefilter --format json "$tree" > "$out/$name.old.json" 2> /dev/null || true
            "$new" check --config "$config" $prefilter --format json "$tree" > "$out/$name.new.json" 2> /dev/null || true
            count="$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["summary"]["violations"], "violations,", len(d["skipped"]), "skipped")' "$out/$name.old.json")"
            if cmp -s "$out/$name.old.json" "$out/$name.new.json"; then
                echo "identical  $name ($count)"
                rm "$out/$name.old.json" "$out/$name.new.json"
            else
                echo "DIFFERENT  $name ($count in the old output)"
                status=1
            fi
        done
    done
done
exit $status
