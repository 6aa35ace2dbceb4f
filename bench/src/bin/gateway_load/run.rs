//! `run`: the orchestrator: spawns the `clients` processes, measures the server and
//! publishes.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::clients::{BUCKETS, ClientReport, bucket_value};
use crate::{Proto, Target, now_us};

// ---------------------------------------------------------------------------------------
// The orchestrator.

pub(crate) struct Plan {
    pub(crate) target: Target,
    pub(crate) contender: String,
    pub(crate) http: String,
    pub(crate) server_pid: u32,
    pub(crate) service_key: String,
    pub(crate) users: usize,
    pub(crate) per_user: usize,
    pub(crate) procs: usize,
    pub(crate) rates: Vec<u32>,
    pub(crate) window: Duration,
    pub(crate) warmup: Duration,
    pub(crate) concurrency: usize,
    pub(crate) settle: Duration,
    pub(crate) idle_only: bool,
}

/// One line of results.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RunResult {
    pub(crate) contender: String,
    pub(crate) sockets: usize,
    pub(crate) connected: u64,
    pub(crate) failed: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_idle_kib: u64,
    pub(crate) rss_per_idle_conn_kib: f64,
    pub(crate) phases: Vec<Phase>,
    /// Sockets that closed during the run.
    pub(crate) closed: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Phase {
    pub(crate) name: String,
    pub(crate) target_rate: Option<u32>,
    pub(crate) publish_per_s: f64,
    pub(crate) publish_errors: u64,
    pub(crate) delivered_per_s: f64,
    pub(crate) deliveries_per_publish: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    /// Server CPU over the window, percent of one core.
    pub(crate) server_cpu_pct: f64,
}

pub(crate) struct Child {
    process: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Child {
    async fn ask(&mut self, command: &str) -> anyhow::Result<String> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        self.stdout
            .next_line()
            .await?
            .context("clients process ended")
    }
}

pub(crate) fn read_status(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("{field} of {pid}"))?;
    Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
}

/// utime + stime of the process, seconds.
pub(crate) fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields after the command: state is 0, utime 11, stime 12.
    (ticks(11) + ticks(12)) / 100.0
}

pub(crate) async fn run(plan: Plan) -> anyhow::Result<RunResult> {
    let addr = plan
        .http
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    // Warm the publish path (no sockets yet) so the memory delta is the sockets'.
    publish_phase(&plan, &addr, Some(200), Duration::from_secs(1), None).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = read_status(plan.server_pid, "VmRSS:")?;

    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    let per_proc = plan.users.div_ceil(plan.procs);
    for p in 0..plan.procs {
        let first = p * per_proc;
        let users = per_proc.min(plan.users.saturating_sub(first));
        if users == 0 {
            break;
        }
        let proto = match plan.target.proto {
            Proto::Ssot => "ssot",
            Proto::Plain => "plain",
            Proto::Socketio => "socketio",
        };
        let mut process = tokio::process::Command::new(&exe)
            .args(["clients", "--proto", proto, "--ws", &plan.target.ws])
            .args([
                "--secret",
                &plan.target.secret,
                "--token",
                &plan.target.token,
            ])
            .args(["--first-user", &first.to_string()])
            .args(["--users", &users.to_string()])
            .args(["--per-user", &plan.per_user.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = process.stdin.take().context("stdin")?;
        let stdout = BufReader::new(process.stdout.take().context("stdout")?).lines();
        children.push(Child {
            process,
            stdin,
            stdout,
        });
    }
    let connect_start = Instant::now();
    let (mut connected, mut failed, mut first_error) = (0, 0, None);
    for child in &mut children {
        let line = child.stdout.next_line().await?.context("clients died")?;
        let v: serde_json::Value = serde_json::from_str(&line)?;
        connected += v["ready"].as_u64().unwrap_or(0);
        failed += v["failed"].as_u64().unwrap_or(0);
        if let Some(e) = v["error"].as_str() {
            first_error.get_or_insert(e.to_owned());
        }
    }
    eprintln!(
        "{}: {connected} sockets connected, {failed} failed, in {:.1}s",
        plan.contender,
        connect_start.elapsed().as_secs_f64()
    );
    tokio::time::sleep(plan.settle).await;
    let rss_idle = read_status(plan.server_pid, "VmRSS:")?;
    let per_conn = if connected > 0 {
        rss_idle.saturating_sub(rss_before) as f64 / connected as f64
    } else {
        0.0
    };
    eprintln!(
        "{}: RSS {rss_before} KiB → {rss_idle} KiB idle: {per_conn:.2} KiB per socket",
        plan.contender
    );

    let mut phases = Vec::new();
    if !plan.idle_only {
        for &rate in &plan.rates {
            let phase = publish_phase(&plan, &addr, Some(rate), plan.window, Some(&mut children))
                .await?
                .context("phase")?;
            eprintln!("{}: {phase:?}", plan.contender);
            phases.push(phase);
        }
        let phase = publish_phase(&plan, &addr, None, plan.window, Some(&mut children))
            .await?
            .context("phase")?;
        eprintln!("{}: {phase:?}", plan.contender);
        phases.push(phase);
    }
    let mut closed = 0;
    for child in &mut children {
        let report: ClientReport = serde_json::from_str(&child.ask("report").await?)?;
        closed += report.closed;
        let _ = child.stdin.write_all(b"quit\n").await;
    }
    for child in &mut children {
        let _ = tokio::time::timeout(Duration::from_secs(10), child.process.wait()).await;
    }
    Ok(RunResult {
        contender: plan.contender.clone(),
        sockets: plan.users * plan.per_user,
        connected,
        failed,
        first_error,
        rss_before_kib: rss_before,
        rss_idle_kib: rss_idle,
        rss_per_idle_conn_kib: per_conn,
        phases,
        closed,
    })
}

#[derive(Default)]
pub(crate) struct PublishCounts {
    ok: AtomicU64,
    errors: AtomicU64,
}

/// Publishes at `rate` per second (or closed-loop at saturation) for warm-up + `window`;
/// with `children`, reads their deliveries over the window.
pub(crate) async fn publish_phase(
    plan: &Plan,
    addr: &str,
    rate: Option<u32>,
    window: Duration,
    children: Option<&mut Vec<Child>>,
) -> anyhow::Result<Option<Phase>> {
    let counts = Arc::new(PublishCounts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let next_slot = Arc::new(AtomicU64::new(0));
    let warmup = if children.is_some() {
        plan.warmup
    } else {
        Duration::ZERO
    };
    let start = Instant::now();
    let deadline = start + warmup + window;
    let mut workers = Vec::new();
    for w in 0..plan.concurrency {
        let (counts, stop, next_slot) = (
            Arc::clone(&counts),
            Arc::clone(&stop),
            Arc::clone(&next_slot),
        );
        let (addr, key, users) = (addr.to_owned(), plan.service_key.clone(), plan.users);
        workers.push(tokio::spawn(async move {
            let mut seed =
                0x9E37_79B9_7F4A_7C15u64 ^ (w as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let mut conn: Option<BufReader<TcpStream>> = None;
            while !stop.load(Ordering::Relaxed) {
                if let Some(rate) = rate {
                    let k = next_slot.fetch_add(1, Ordering::Relaxed);
                    let at = start + Duration::from_secs_f64(k as f64 / rate as f64);
                    if at >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(at).await;
                }
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let user = seed % users as u64;
                match post_event(&mut conn, &addr, &key, user).await {
                    Ok(200) => counts.ok.fetch_add(1, Ordering::Relaxed),
                    Ok(_) => counts.errors.fetch_add(1, Ordering::Relaxed),
                    Err(_) => {
                        conn = None;
                        counts.errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    let Some(children) = children else {
        tokio::time::sleep_until(deadline).await;
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            let _ = w.await;
        }
        return Ok(None);
    };
    tokio::time::sleep_until(start + warmup).await;
    for child in children.iter_mut() {
        child.ask("reset").await?;
    }
    counts.ok.store(0, Ordering::Relaxed);
    counts.errors.store(0, Ordering::Relaxed);
    let cpu_start = cpu_secs(plan.server_pid);
    let measured = Instant::now();
    tokio::time::sleep_until(deadline).await;
    let elapsed = measured.elapsed().as_secs_f64();
    let cpu = (cpu_secs(plan.server_pid) - cpu_start) / elapsed * 100.0;
    let (published, errors) = (
        counts.ok.load(Ordering::Relaxed),
        counts.errors.load(Ordering::Relaxed),
    );
    if rate.is_some() {
        // Fixed rate: let the last events arrive, so every latency is counted.
        for w in workers.drain(..) {
            let _ = w.await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let mut received = 0;
    let mut max_us = 0;
    let mut buckets = vec![0u64; BUCKETS];
    for child in children.iter_mut() {
        let report: ClientReport = serde_json::from_str(&child.ask("report").await?)?;
        received += report.received;
        max_us = max_us.max(report.max_us);
        for (i, n) in report.buckets {
            buckets[i] += n;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let percentile = |q: f64| {
        let total: u64 = buckets.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_value(i) as f64 / 1000.0;
            }
        }
        0.0
    };
    let name = match rate {
        Some(r) => format!("rate-{r}"),
        None => "saturation".to_owned(),
    };
    // At saturation deliveries are counted over the window only; at a fixed rate every
    // event published in the window is waited for.
    Ok(Some(Phase {
        name,
        target_rate: rate,
        publish_per_s: published as f64 / elapsed,
        publish_errors: errors,
        delivered_per_s: received as f64 / elapsed,
        deliveries_per_publish: if published > 0 {
            received as f64 / published as f64
        } else {
            0.0
        },
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        max_ms: max_us as f64 / 1000.0,
        server_cpu_pct: cpu,
    }))
}

/// One keep-alive `POST /v1/users/u<user>/events`; the HTTP status.
pub(crate) async fn post_event(
    conn: &mut Option<BufReader<TcpStream>>,
    addr: &str,
    key: &str,
    user: u64,
) -> anyhow::Result<u16> {
    if conn.is_none() {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        *conn = Some(BufReader::new(stream));
    }
    let conn = conn.as_mut().expect("just connected");
    let body = format!("{{\"event\":\"bench\",\"data\":{{\"t\":{}}}}}", now_us());
    let request = format!(
        "POST /v1/users/u{user}/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.get_mut().write_all(request.as_bytes()).await?;
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        bail!("connection closed");
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    let mut close = false;
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            bail!("connection closed in headers");
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "content-length" => length = v.parse()?,
                "transfer-encoding" => bail!("chunked answers are not supported"),
                "connection" if v.eq_ignore_ascii_case("close") => close = true,
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await?;
    if close {
        bail!("server closed the keep-alive connection");
    }
    Ok(status)
}
