//! `report`: JSON lines of several runs in, the Markdown table out.

use std::path::PathBuf;

use anyhow::Context;

use crate::run::{Phase, RunResult};

// ---------------------------------------------------------------------------------------
// The table.

pub(crate) fn report(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut runs: Vec<RunResult> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
        for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
            runs.push(serde_json::from_str(line)?);
        }
    }
    let find = |name: &str| {
        runs.iter()
            .find(|r| r.contender == name && !r.phases.is_empty())
    };
    let hold_line = || {
        runs.iter()
            .find(|r| r.contender.starts_with("ssot-gateway") && r.phases.is_empty())
            .map(|hold| {
                format!(
                    "| one gateway holds 19,000 idle sockets | {} ({} of {} connected, {} failed, {:.2} KiB RSS per socket) |",
                    if hold.connected >= 19_000 && hold.closed == 0 { "met" } else { "MISSED" },
                    hold.connected,
                    hold.sockets,
                    hold.failed,
                    hold.rss_per_idle_conn_kib
                )
            })
    };
    let Some(ssot) = find("ssot-gateway") else {
        // An idle-only run (`CONTENDERS= HOLD=n`): memory only.
        println!("| check | result |\n|---|---|");
        if let Some(line) = hold_line() {
            println!("{line}");
        }
        return Ok(());
    };
    let sio = find("socket.io");
    let py = find("fastapi");
    let contenders: Vec<&RunResult> = [Some(ssot), sio, py].into_iter().flatten().collect();
    let get = |r: &RunResult, name: &str, f: &dyn Fn(&Phase) -> f64| {
        r.phases.iter().find(|p| p.name == name).map(f)
    };
    let fmt = |v: Option<f64>, decimals: usize| match v {
        Some(v) => format!("{v:.decimals$}"),
        None => "–".to_owned(),
    };
    let ratio = |a: Option<f64>, b: Option<f64>, inverse: bool| match (a, b) {
        (Some(a), Some(b)) if a > 0.0 && b > 0.0 => {
            format!("{:.2}×", if inverse { b / a } else { a / b })
        }
        _ => "–".to_owned(),
    };
    let mut header = "| figure |".to_owned();
    let mut rule = "|---|".to_owned();
    for c in &contenders {
        header += &format!(" {} |", c.contender);
        rule += "---:|";
    }
    header += " ssot vs socket.io | ssot vs FastAPI |";
    rule += "---:|---:|";
    println!("{header}\n{rule}");
    type Getter<'a> = Box<dyn Fn(&RunResult) -> Option<f64> + 'a>;
    let mut rows: Vec<(String, Getter<'_>, usize, bool)> = vec![
        (
            "delivered events/s at saturation (clients)".to_owned(),
            Box::new(move |r: &RunResult| get(r, "saturation", &|p| p.delivered_per_s)),
            0,
            false,
        ),
        (
            "publishes/s at saturation (acknowledged)".to_owned(),
            Box::new(move |r: &RunResult| get(r, "saturation", &|p| p.publish_per_s)),
            0,
            false,
        ),
        (
            "server CPU at saturation (% of one core)".to_owned(),
            Box::new(move |r: &RunResult| get(r, "saturation", &|p| p.server_cpu_pct)),
            0,
            false,
        ),
    ];
    let mut rates: Vec<u32> = ssot.phases.iter().filter_map(|p| p.target_rate).collect();
    rates.dedup();
    for rate in rates {
        let name = format!("rate-{rate}");
        for (label, pick) in [
            ("p50", (|p: &Phase| p.p50_ms) as fn(&Phase) -> f64),
            ("p99", |p: &Phase| p.p99_ms),
            ("max", |p: &Phase| p.max_ms),
        ] {
            let n = name.clone();
            rows.push((
                format!("{label} ms at {rate} publishes/s"),
                Box::new(move |r: &RunResult| get(r, &n, &|p| pick(p))),
                2,
                true,
            ));
        }
        let n = name.clone();
        rows.push((
            format!("achieved publishes/s at {rate}/s"),
            Box::new(move |r: &RunResult| get(r, &n, &|p| p.publish_per_s)),
            0,
            false,
        ));
        let n = name.clone();
        rows.push((
            format!("deliveries per publish at {rate}/s (5 expected)"),
            Box::new(move |r: &RunResult| get(r, &n, &|p| p.deliveries_per_publish)),
            3,
            false,
        ));
    }
    rows.push((
        "RSS per idle connection, KiB".to_owned(),
        Box::new(|r: &RunResult| Some(r.rss_per_idle_conn_kib)),
        2,
        true,
    ));
    rows.push((
        "sockets connected (of 10,000)".to_owned(),
        Box::new(|r: &RunResult| Some(r.connected as f64)),
        0,
        false,
    ));
    rows.push((
        "sockets closed during the run".to_owned(),
        Box::new(|r: &RunResult| Some(r.closed as f64)),
        0,
        false,
    ));
    for (label, value, decimals, lower_is_better) in &rows {
        let mut line = format!("| {label} |");
        for c in &contenders {
            line += &format!(" {} |", fmt(value(c), *decimals));
        }
        let mine = value(ssot);
        let show_ratio = !label.contains("connected")
            && !label.contains("closed")
            && !label.contains("per publish")
            && !label.contains("CPU");
        let r_sio = if show_ratio {
            ratio(mine, sio.and_then(value.as_ref()), *lower_is_better)
        } else {
            String::new()
        };
        let r_py = if show_ratio {
            ratio(mine, py.and_then(value.as_ref()), *lower_is_better)
        } else {
            String::new()
        };
        line += &format!(" {r_sio} | {r_py} |");
        println!("{line}");
    }
    println!();
    println!(
        "Ratios are \"ssot is N× better\": throughput ÷ peer's, or peer's latency/memory ÷ ssot's."
    );
    println!();
    // Floors.
    let sat = |r: Option<&RunResult>| r.and_then(|r| get(r, "saturation", &|p| p.delivered_per_s));
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not measured",
    };
    let mine = sat(Some(ssot));
    let floor_sio = sat(sio).zip(mine).map(|(s, m)| m >= 2.0 * s);
    let floor_py = sat(py).zip(mine).map(|(s, m)| m >= 5.0 * s);
    println!("| floor | result |\n|---|---|");
    println!(
        "| saturated delivery ≥ 2× socket.io | {} |",
        verdict(floor_sio)
    );
    println!(
        "| saturated delivery ≥ 5× FastAPI | {} |",
        verdict(floor_py)
    );
    for p in ssot.phases.iter().filter(|p| p.target_rate.is_some()) {
        let theirs = sio.and_then(|s| s.phases.iter().find(|q| q.name == p.name));
        println!(
            "| p99 at {}/s ≤ socket.io's | {} |",
            p.target_rate.unwrap_or(0),
            verdict(theirs.map(|t| p.p99_ms <= t.p99_ms))
        );
    }
    let kib = ssot.rss_per_idle_conn_kib;
    println!(
        "| RSS per idle connection ≤ 8 KiB | {} ({kib:.2} KiB) |",
        verdict(Some(kib <= 8.0))
    );
    if let Some(line) = hold_line() {
        println!("{line}");
    }
    Ok(())
}
