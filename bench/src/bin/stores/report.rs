//! The Markdown table of the collected rows.

use ssot_bench::report::thousands;

use crate::{Contender, Pair, Row};

/// The table: one row per contender, grouped by pair, each cell its median round (by
/// ops/s). The ratio is taken within each round, against the baseline measured seconds
/// before or after it, and shown as the median of the rounds with their range: background
/// load on a shared machine moves whole rounds, which a ratio of medians would mix.
pub(super) fn render(rows: &[Row]) -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write as _;

    let mut rounds: BTreeMap<(Pair, Contender), Vec<&Row>> = BTreeMap::new();
    for row in rows {
        rounds
            .entry((row.pair, row.contender))
            .or_default()
            .push(row);
    }
    let median: BTreeMap<(Pair, Contender), &Row> = rounds
        .iter_mut()
        .map(|(key, cells)| {
            cells.sort_by(|a, b| a.stats.ops_per_sec.total_cmp(&b.stats.ops_per_sec));
            (*key, cells[cells.len() / 2])
        })
        .collect();
    let n_rounds = rounds.values().map(Vec::len).max().unwrap_or(0);
    let concurrency = rows.first().map_or(0, |r| r.concurrency);

    let by_round: BTreeMap<(Pair, Contender, usize), f64> = rows
        .iter()
        .map(|r| ((r.pair, r.contender, r.round), r.stats.ops_per_sec))
        .collect();
    let ratios = |pair: Pair, who: Contender| -> Vec<f64> {
        let mut ratios: Vec<f64> = by_round
            .iter()
            .filter(|((p, c, _), _)| *p == pair && *c == who)
            .filter_map(|((_, _, round), ops)| {
                Some(ops / by_round.get(&(pair, pair.baseline(), *round))?)
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{concurrency} concurrent tasks; each figure is the median of {n_rounds} round(s) by ops/s. \
         ÷ raw: ops/s over the pair's raw baseline (marked *) in the same round, median \
         (lowest–highest) of the rounds. CPU: µs per operation, client process / redis-server.\n"
    );
    let _ = writeln!(
        out,
        "| operation | contender | ops/s | p50 µs | p99 µs | CPU client / server | ÷ raw |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    for pair in Pair::ALL {
        let mut first = true;
        for &who in pair.contenders() {
            let Some(row) = median.get(&(pair, who)) else {
                continue;
            };
            let st = &row.stats;
            let cpu = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.1}"));
            let ratios = ratios(pair, who);
            let ratio = match ratios.as_slice() {
                [] => "–".to_owned(),
                [only] => format!("{only:.2}×"),
                _ if who == pair.baseline() => "1.00×".to_owned(),
                [low, .., high] => {
                    let median = ratios[ratios.len() / 2];
                    format!("{median:.2}× ({low:.2}–{high:.2})")
                }
            };
            let _ = writeln!(
                out,
                "| {} | {}{} | {} | {:.0} | {:.0} | {} / {} | {} |",
                if first { pair.label() } else { "" },
                who.label(),
                if who == pair.baseline() { " *" } else { "" },
                thousands(st.ops_per_sec),
                st.p50_us,
                st.p99_us,
                cpu(st.cpu_us_per_op),
                cpu(row.server_cpu_us_per_op),
                ratio,
            );
            first = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use ssot_bench::load::Stats;

    use super::*;

    fn row(pair: Pair, contender: Contender, round: usize, ops_per_sec: f64) -> Row {
        Row {
            pair,
            contender,
            round,
            concurrency: 64,
            stats: Stats {
                ops: 1,
                seconds: 1.0,
                ops_per_sec,
                p50_us: ops_per_sec / 1000.0,
                p99_us: 20.0,
                cpu_us_per_op: Some(5.0),
            },
            server_cpu_us_per_op: None,
        }
    }

    #[test]
    fn every_pair_measures_its_baseline() {
        for pair in Pair::ALL {
            assert!(pair.contenders().contains(&pair.baseline()), "{pair:?}");
            assert_ne!(
                pair.contenders()[0],
                pair.baseline(),
                "{pair:?}: store first"
            );
            assert!(!pair.items().is_multiple_of(7_919));
        }
    }

    #[test]
    fn median_round_and_ratio_to_the_baseline() {
        let rows = vec![
            row(Pair::CacheGet, Contender::CacheGet, 1, 40_000.0),
            row(Pair::CacheGet, Contender::CacheGet, 2, 45_000.0),
            row(Pair::CacheGet, Contender::CacheGet, 3, 10_000.0),
            row(Pair::CacheGet, Contender::RawGet, 1, 50_000.0),
            row(Pair::CacheGet, Contender::RawGet, 2, 50_000.0),
            row(Pair::CacheGet, Contender::RawGet, 3, 20_000.0),
        ];
        let text = render(&rows);
        // Rounds 1-3 give 0.80, 0.90 and 0.50.
        assert!(
            text.contains(
                "| UserCache get | store `UserCache::get` | 40,000 | 40 | 20 | 5.0 / – | 0.80× (0.50–0.90) |"
            ),
            "{text}"
        );
        assert!(
            text.contains("|  | raw `GET` * | 50,000 | 50 | 20 | 5.0 / – | 1.00× |"),
            "{text}"
        );
        assert!(text.contains("median of 3 round(s)"), "{text}");
    }

    #[test]
    fn rows_round_trip_through_json_lines() {
        let mut original = row(Pair::VerifyCached, Contender::RawExists, 2, 1.0);
        original.server_cpu_us_per_op = Some(3.5);
        let line = serde_json::to_string(&original).unwrap();
        assert!(
            line.contains(r#""pair":"verify-cached","contender":"raw-exists""#),
            "{line}"
        );
        let parsed: Vec<Row> =
            ssot_bench::report::parse_json_lines(&format!("# header\n{line}\n")).unwrap();
        assert_eq!(parsed, vec![original]);
    }
}
