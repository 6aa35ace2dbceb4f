#!/usr/bin/env python3
"""Headline table of several `bench/gateway/run.sh` runs: the median of each figure, every
run beside it, and the same-run ratios of ssot to each peer (median of the per-run ratios).

    python3 bench/gateway/summarize.py bench/results/gateway/<run1> <run2> <run3>

Reads only the raw JSON each run kept (`<contender>.json`), so every figure in the table can be
traced to a committed file. No third-party modules.
"""

import json
import statistics
import sys
from pathlib import Path

CONTENDERS = ["ssot-gateway", "socket.io", "fastapi"]
PEERS = ["socket.io", "fastapi"]


def phase(run, name):
    return next((p for p in run["phases"] if p["name"] == name), None)


def sustained(run):
    """The fixed-rate phase with the highest rate the contender sustained: publishes/s within
    1 % of the target, 5 deliveries per publish (within 1 %), p99 under 1 s."""
    best = None
    for p in run["phases"]:
        target = p.get("target_rate")
        if not target:
            continue
        ok = (
            abs(p["publish_per_s"] - target) <= 0.01 * target
            and abs(p["deliveries_per_publish"] - 5.0) <= 0.05
            and p["p99_ms"] < 1000
        )
        if ok and (best is None or target > best["target_rate"]):
            best = p
    return best


def cpu_us_per_delivery(p):
    if not p or not p.get("delivered_per_s"):
        return None
    return p["server_cpu_pct"] / 100 * 1e6 / p["delivered_per_s"]


FIGURES = [
    ("delivered events/s at saturation", lambda r: phase(r, "saturation")["delivered_per_s"], "{:,.0f}", True),
    ("server CPU at saturation (% of one core)", lambda r: phase(r, "saturation")["server_cpu_pct"], "{:.0f}", None),
    ("server CPU µs per delivered event (saturation)", lambda r: cpu_us_per_delivery(phase(r, "saturation")), "{:.1f}", False),
    # ssot runs only 500 and 2,000/s fixed rates (it sustains both); the ladder is the peers'.
    ("delivered events/s at the highest sustained fixed rate", lambda r: (sustained(r) or {}).get("delivered_per_s"), "{:,.0f}", None),
    ("p99 ms at 500 publishes/s", lambda r: (phase(r, "rate-500") or {}).get("p99_ms"), "{:.2f}", False),
    ("p99 ms at 2,000 publishes/s", lambda r: (phase(r, "rate-2000") or {}).get("p99_ms"), "{:.2f}", False),
    ("deliveries per publish at 2,000/s (5 expected)", lambda r: (phase(r, "rate-2000") or {}).get("deliveries_per_publish"), "{:.3f}", None),
    ("RSS per idle socket, KiB (10,000 sockets)", lambda r: r["rss_per_idle_conn_kib"], "{:.2f}", False),
    ("sockets closed during the run", lambda r: r["closed"], "{:.0f}", None),
]


def fmt(spec, value):
    return "–" if value is None else spec.format(value)


def main(dirs):
    runs = []
    for d in dirs:
        d = Path(d)
        run = {}
        for c in CONTENDERS + ["ssot-gateway-hold"]:
            f = d / f"{c}.json"
            if f.exists():
                run[c] = json.loads(f.read_text())
        runs.append((d.name, run))
    names = ", ".join(n for n, _ in runs)
    print(f"Runs: {names} (median of {len(runs)}; every run in brackets, in that order)\n")
    head = "| figure | " + " | ".join(CONTENDERS) + " | " + " | ".join(f"ssot ÷ {p}" for p in PEERS) + " |"
    print(head)
    print("|---|" + "---:|" * (len(CONTENDERS) + len(PEERS)))
    for label, get, spec, higher_is_better in FIGURES:
        cells = []
        per_contender = {}
        for c in CONTENDERS:
            values = []
            for _, run in runs:
                try:
                    values.append(get(run[c]) if c in run else None)
                except (KeyError, TypeError):
                    values.append(None)
            per_contender[c] = values
            present = [v for v in values if v is not None]
            med = statistics.median(present) if present else None
            cells.append(f"{fmt(spec, med)} [{', '.join(fmt(spec, v) for v in values)}]")
        for p in PEERS:
            if higher_is_better is None:
                cells.append("")
                continue
            ratios = []
            for ours, theirs in zip(per_contender["ssot-gateway"], per_contender[p]):
                if ours and theirs:
                    ratios.append(ours / theirs if higher_is_better else theirs / ours)
            cells.append(
                f"{statistics.median(ratios):.2f}× [{', '.join(f'{r:.2f}' for r in ratios)}]" if ratios else "–"
            )
        print(f"| {label} | " + " | ".join(cells) + " |")
    holds = [run.get("ssot-gateway-hold") for _, run in runs]
    holds = [h for h in holds if h]
    if holds:
        print(
            "\nssot, one gateway holding idle sockets: "
            + "; ".join(f"{h['connected']:,} of {h['sockets']:,} connected, {h['rss_per_idle_conn_kib']:.2f} KiB each" for h in holds)
        )
    print("\nRatios: ssot ÷ peer for rates, peer ÷ ssot for latency, CPU per event and memory (above 1 = ssot better).")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: summarize.py RUN_DIR [RUN_DIR ...]")
    main(sys.argv[1:])
