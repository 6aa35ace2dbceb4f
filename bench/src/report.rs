//! JSON lines in, Markdown out: one throughput table with the ratios the floors are about,
//! one latency table. A cell measured in several rounds is shown by its median round.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::load::{Cell, Op};

/// Contenders in table order.
const CONTENDERS: [&str; 5] = [
    "manager",
    "raw",
    "python",
    "redis-benchmark",
    "manager-metrics-off",
];
/// Floor of manager / raw redis-rs ops/s at every concurrency.
pub const RAW_FLOOR: f64 = 0.95;
/// Floor of manager / redis-py ops/s at every concurrency.
pub const PYTHON_FLOOR: f64 = 10.0;

/// Parses JSON lines (blank lines and lines starting with `#` are skipped).
pub fn parse_lines(text: &str) -> anyhow::Result<Vec<Cell>> {
    parse_json_lines(text)
}

/// Parses JSON lines of any record type, as [`parse_lines`] does for [`Cell`]s.
pub fn parse_json_lines<T: serde::de::DeserializeOwned>(text: &str) -> anyhow::Result<Vec<T>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| serde_json::from_str(l).map_err(|e| anyhow::anyhow!("bad result line {l:?}: {e}")))
        .collect()
}

/// The median round of each (op, concurrency, contender).
fn medians(cells: &[Cell]) -> BTreeMap<(Op, usize), BTreeMap<String, (Cell, usize)>> {
    let mut rounds: BTreeMap<(Op, usize, String), Vec<&Cell>> = BTreeMap::new();
    for cell in cells {
        rounds
            .entry((cell.op, cell.concurrency, cell.contender.clone()))
            .or_default()
            .push(cell);
    }
    let mut table: BTreeMap<(Op, usize), BTreeMap<String, (Cell, usize)>> = BTreeMap::new();
    for ((op, concurrency, contender), mut cells) in rounds {
        cells.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
        let median = cells[cells.len() / 2].clone();
        table
            .entry((op, concurrency))
            .or_default()
            .insert(contender, (median, cells.len()));
    }
    table
}

/// Renders the throughput table, the latency table and the floor verdicts.
pub fn render(cells: &[Cell]) -> String {
    let table = medians(cells);
    let rounds = table
        .values()
        .flat_map(|row| row.values().map(|(_, n)| *n))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Throughput (ops/s, median of {rounds} round(s)); ratios are manager ÷ peer.\n"
    );
    let _ = writeln!(
        out,
        "| op | clients | manager | raw redis-rs | redis-py asyncio | redis-benchmark | manager, metrics off | manager/raw | manager/python | metrics off/raw |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut worst_raw: Option<f64> = None;
    let mut worst_python: Option<f64> = None;
    for ((op, concurrency), row) in &table {
        let rate = |name: &str| row.get(name).map(|(c, _)| c.ops_per_sec);
        let ratio = |peer: &str| Some(rate("manager")? / rate(peer)?);
        let raw = ratio("raw");
        let python = ratio("python");
        worst_raw = min_opt(worst_raw, raw);
        worst_python = min_opt(worst_python, python);
        let _ = write!(out, "| {} | {concurrency} |", op.as_str().to_uppercase());
        for name in CONTENDERS {
            let _ = write!(out, " {} |", rate(name).map_or("–".into(), thousands));
        }
        let off_raw = rate("manager-metrics-off")
            .zip(rate("raw"))
            .map(|(off, raw)| off / raw);
        let _ = writeln!(
            out,
            " {} | {} | {} |",
            raw.map_or("–".into(), |r| format!("{r:.3}×")),
            python.map_or("–".into(), |r| format!("{r:.1}×")),
            off_raw.map_or("–".into(), |r| format!("{r:.3}×")),
        );
    }
    let _ = writeln!(out, "\nLatency of one command, p50 / p99 (µs).\n");
    let _ = writeln!(
        out,
        "| op | clients | manager | raw redis-rs | redis-py asyncio | redis-benchmark | manager, metrics off |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for ((op, concurrency), row) in &table {
        let _ = write!(out, "| {} | {concurrency} |", op.as_str().to_uppercase());
        for name in CONTENDERS {
            let cell = row.get(name).map_or("–".into(), |(c, _)| {
                format!("{:.0} / {:.0}", c.p50_us, c.p99_us)
            });
            let _ = write!(out, " {cell} |");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "\nCPU time of the load-generating process per command (µs); redis-server's own time is not in it.\n"
    );
    let _ = writeln!(
        out,
        "| op | clients | manager | raw redis-rs | redis-py asyncio |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for ((op, concurrency), row) in &table {
        let _ = write!(out, "| {} | {concurrency} |", op.as_str().to_uppercase());
        for name in &CONTENDERS[..3] {
            let cell = row
                .get(*name)
                .and_then(|(c, _)| c.cpu_us_per_op)
                .map_or("–".into(), |cpu| format!("{cpu:.1}"));
            let _ = write!(out, " {cell} |");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out);
    let verdict = |worst: Option<f64>, floor: f64, what: &str, digits: usize| match worst {
        Some(w) => format!(
            "- manager/{what}: lowest {w:.digits$}× (floor {floor}×) — {}\n",
            if w >= floor { "met" } else { "MISSED" }
        ),
        None => format!("- manager/{what}: not measured\n"),
    };
    out.push_str(&verdict(worst_raw, RAW_FLOOR, "raw", 3));
    out.push_str(&verdict(worst_python, PYTHON_FLOOR, "python", 1));
    out
}

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `123456.7` → `123,457`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(contender: &str, op: Op, concurrency: usize, ops_per_sec: f64) -> Cell {
        Cell {
            contender: contender.into(),
            op,
            concurrency,
            ops: 1,
            seconds: 1.0,
            ops_per_sec,
            p50_us: 10.0,
            p99_us: 20.0,
            cpu_us_per_op: None,
        }
    }

    #[test]
    fn median_round_ratios_and_verdicts() {
        let cells = vec![
            cell("manager", Op::Get, 16, 90_000.0),
            cell("manager", Op::Get, 16, 100_000.0),
            cell("manager", Op::Get, 16, 50_000.0),
            cell("raw", Op::Get, 16, 100_000.0),
            cell("python", Op::Get, 16, 5_000.0),
        ];
        let text = render(&cells);
        assert!(
            text.contains("| GET | 16 | 90,000 | 100,000 | 5,000 | – | – | 0.900× | 18.0× | – |"),
            "{text}"
        );
        assert!(
            text.contains("manager/raw: lowest 0.900× (floor 0.95×) — MISSED"),
            "{text}"
        );
        assert!(
            text.contains("manager/python: lowest 18.0× (floor 10×) — met"),
            "{text}"
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234567.0), "1,234,567");
    }
}
