//! `gateway_load`: the load generator behind the gateway section of `BENCHMARKS.md`, driven
//! by `bench/gateway/run.sh`.
//!
//! # Layout
//! - `clients`: one process holding a share of the WebSockets. It speaks the ssot protocol,
//!   a plain JSON WebSocket (the FastAPI peer) or Engine.IO v4 / socket.io text frames over a
//!   plain WebSocket (the socket.io peer), records publish→receive latency from the `t`
//!   (Unix µs) embedded in each event, and answers `reset` / `report` / `quit` on stdin.
//! - `run`: spawns the `clients` processes, measures the server's RSS before connecting and
//!   with every socket idle, then publishes over keep-alive HTTP at fixed rates and at
//!   saturation (closed loop), and prints one JSON line of figures.
//! - `report`: JSON lines of several runs in, the Markdown table with ratios and floors out.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// WebSocket load for the gateway benchmark.
#[derive(Debug, Parser)]
#[command(name = "gateway_load")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How a contender's sockets talk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Proto {
    /// `GET /v1/ws` with a JWT; waits for the first `status` frame.
    Ssot,
    /// `GET /ws?user=..&token=..`; waits for `{"type":"ready"}`.
    Plain,
    /// Engine.IO v4 over WebSocket, socket.io namespace `/` with `{token, user}` auth.
    Socketio,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Hold sockets of users `first-user .. first-user+users`, `per-user` each.
    Clients {
        #[command(flatten)]
        target: Target,
        /// First user number (users are `u<n>`).
        #[arg(long)]
        first_user: usize,
        /// Users of this process.
        #[arg(long)]
        users: usize,
        /// Sockets per user.
        #[arg(long)]
        per_user: usize,
    },
    /// Measure one contender; prints one JSON line.
    Run {
        #[command(flatten)]
        target: Target,
        /// Name in the table.
        #[arg(long)]
        contender: String,
        /// Base URL of the publish API (`http://127.0.0.1:port`).
        #[arg(long)]
        http: String,
        /// Pid of the server process (for VmRSS and CPU time).
        #[arg(long)]
        server_pid: u32,
        /// Key of the publish API.
        #[arg(long)]
        service_key: String,
        /// Users (`u0 ..`).
        #[arg(long, default_value_t = 2000)]
        users: usize,
        /// Sockets per user.
        #[arg(long, default_value_t = 5)]
        per_user: usize,
        /// Client processes (each below the 20,000 open-file cap).
        #[arg(long, default_value_t = 4)]
        procs: usize,
        /// Fixed publish rates for the latency phases, per second.
        #[arg(long, value_delimiter = ',', default_value = "500,2000")]
        rates: Vec<u32>,
        /// Measured window of each phase, seconds.
        #[arg(long, default_value_t = 10)]
        window_secs: u64,
        /// Unmeasured warm-up before each window, seconds.
        #[arg(long, default_value_t = 2)]
        warmup_secs: u64,
        /// Publisher connections (keep-alive HTTP).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Idle time before reading the RSS with all sockets connected, seconds.
        #[arg(long, default_value_t = 5)]
        settle_secs: u64,
        /// Connect, measure memory, and stop (the 19,000-socket check).
        #[arg(long)]
        idle_only: bool,
    },
    /// Markdown table of the JSON lines written by `run`.
    Report {
        /// Files of JSON lines.
        files: Vec<PathBuf>,
    },
}

/// Where the sockets go and how they authenticate.
#[derive(Debug, Clone, clap::Args)]
struct Target {
    /// Protocol of the contender.
    #[arg(long, value_enum)]
    proto: Proto,
    /// Base WebSocket URL (`ws://127.0.0.1:port`).
    #[arg(long)]
    ws: String,
    /// HS256 secret for ssot tokens.
    #[arg(long, default_value = "")]
    secret: String,
    /// Static token of the peers.
    #[arg(long, default_value = "")]
    token: String,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Clients {
            target,
            first_user,
            users,
            per_user,
        } => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(clients(target, first_user, users, per_user)),
        Command::Run {
            target,
            contender,
            http,
            server_pid,
            service_key,
            users,
            per_user,
            procs,
            rates,
            window_secs,
            warmup_secs,
            concurrency,
            settle_secs,
            idle_only,
        } => {
            let plan = Plan {
                target,
                contender,
                http,
                server_pid,
                service_key,
                users,
                per_user,
                procs,
                rates,
                window: Duration::from_secs(window_secs),
                warmup: Duration::from_secs(warmup_secs),
                concurrency,
                settle: Duration::from_secs(settle_secs),
                idle_only,
            };
            let result = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?
                .block_on(run(plan))?;
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
        Command::Report { files } => report(&files),
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Latency histogram: log-linear buckets, under 1% error, mergeable across processes.

const BUCKETS: usize = 256 + 40 * 128;

fn bucket(v: u64) -> usize {
    if v < 256 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() as usize;
    let m = ((v >> (e - 7)) & 127) as usize;
    (256 + (e - 8) * 128 + m).min(BUCKETS - 1)
}

/// The middle of bucket `i`, in µs.
fn bucket_value(i: usize) -> u64 {
    if i < 256 {
        return i as u64;
    }
    let e = (i - 256) / 128 + 8;
    let m = ((i - 256) % 128) as u64;
    let low = (128 + m) << (e - 7);
    low + (1u64 << (e - 7)) / 2
}

/// What a `clients` process saw since the last `reset`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ClientReport {
    received: u64,
    max_us: u64,
    /// `(bucket, count)` of non-empty buckets.
    buckets: Vec<(usize, u64)>,
    open: u64,
    closed: u64,
}

struct Stats {
    received: AtomicU64,
    max_us: AtomicU64,
    buckets: Vec<AtomicU64>,
    open: AtomicU64,
    closed: AtomicU64,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            received: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            open: AtomicU64::new(0),
            closed: AtomicU64::new(0),
        }
    }

    fn record(&self, latency_us: u64) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(latency_us, Ordering::Relaxed);
        self.buckets[bucket(latency_us)].fetch_add(1, Ordering::Relaxed);
    }

    fn reset(&self) {
        self.received.store(0, Ordering::Relaxed);
        self.max_us.store(0, Ordering::Relaxed);
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
    }

    fn report(&self) -> ClientReport {
        ClientReport {
            received: self.received.load(Ordering::Relaxed),
            max_us: self.max_us.load(Ordering::Relaxed),
            buckets: self
                .buckets
                .iter()
                .enumerate()
                .filter_map(|(i, b)| {
                    let n = b.load(Ordering::Relaxed);
                    (n > 0).then_some((i, n))
                })
                .collect(),
            open: self.open.load(Ordering::Relaxed),
            closed: self.closed.load(Ordering::Relaxed),
        }
    }
}

/// The `t` field (Unix µs) of an event frame, wherever the contender put it.
fn embedded_time(text: &str) -> Option<u64> {
    let at = text.find("\"t\":")? + 4;
    let digits = text[at..].trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

// ---------------------------------------------------------------------------------------
// Client sockets.

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

fn ssot_token(secret: &str, user: &str, n: usize) -> anyhow::Result<String> {
    let now = now_us() / 1_000_000;
    let claims = serde_json::json!({
        "sub": user,
        "iat": now,
        "exp": now + 3600,
        "jti": format!("bench-{user}-{n}-{}", std::process::id()),
    });
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

async fn open_socket(target: &Target, user: &str, n: usize) -> anyhow::Result<Ws> {
    // Small buffers: thousands of client sockets share this process and its cores.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20);
    let base = target.ws.trim_end_matches('/');
    let request = match target.proto {
        Proto::Ssot => {
            let mut request = format!("{base}/v1/ws").into_client_request()?;
            let token = ssot_token(&target.secret, user, n)?;
            request
                .headers_mut()
                .insert("Authorization", format!("Bearer {token}").parse()?);
            request
        }
        Proto::Plain => {
            format!("{base}/ws?user={user}&token={}", target.token).into_client_request()?
        }
        Proto::Socketio => {
            format!("{base}/socket.io/?EIO=4&transport=websocket").into_client_request()?
        }
    };
    let debug = std::env::var_os("GATEWAY_LOAD_DEBUG").is_some();
    if debug {
        eprintln!("{user}: connecting");
    }
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    if debug {
        eprintln!("{user}: upgraded");
    }
    // Ready means subscribed: the first frame the contender sends once delivery is set up.
    loop {
        let msg = ws.next().await.context("closed during handshake")??;
        let Message::Text(text) = msg else { continue };
        let text = text.as_str();
        if debug {
            eprintln!("{user}: {text}");
        }
        match target.proto {
            Proto::Ssot if text.contains("\"status\"") => return Ok(ws),
            Proto::Plain if text.contains("\"ready\"") => return Ok(ws),
            Proto::Socketio if text.starts_with('0') => {
                let auth = serde_json::json!({ "token": target.token, "user": user });
                ws.send(Message::Text(format!("40{auth}").into())).await?;
            }
            Proto::Socketio if text.starts_with("40") => return Ok(ws),
            Proto::Socketio if text.starts_with("44") => bail!("socket.io refused: {text}"),
            _ => {}
        }
    }
}

async fn hold_socket(mut ws: Ws, proto: Proto, stats: Arc<Stats>) {
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(Message::Text(text)) => {
                let text = text.as_str();
                if proto == Proto::Socketio && text == "2" {
                    if ws.send(Message::Text("3".into())).await.is_err() {
                        break;
                    }
                    continue;
                }
                if let Some(t) = embedded_time(text) {
                    stats.record(now_us().saturating_sub(t));
                }
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    stats.open.fetch_sub(1, Ordering::Relaxed);
    stats.closed.fetch_add(1, Ordering::Relaxed);
}

async fn clients(
    target: Target,
    first_user: usize,
    users: usize,
    per_user: usize,
) -> anyhow::Result<()> {
    let stats = Arc::new(Stats::new());
    let target = Arc::new(target);
    // Bounded handshakes in flight: listen backlogs are finite.
    let gate = Arc::new(Semaphore::new(32));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    for u in first_user..first_user + users {
        for n in 0..per_user {
            let (stats, target, gate, done) = (
                Arc::clone(&stats),
                Arc::clone(&target),
                Arc::clone(&gate),
                done_tx.clone(),
            );
            tokio::spawn(async move {
                let user = format!("u{u}");
                let mut last = String::new();
                for attempt in 0..5u64 {
                    let permit = gate.acquire().await.expect("gate stays open");
                    let opened = tokio::time::timeout(
                        Duration::from_secs(30),
                        open_socket(&target, &user, n),
                    )
                    .await;
                    drop(permit);
                    match opened {
                        Ok(Ok(ws)) => {
                            stats.open.fetch_add(1, Ordering::Relaxed);
                            let _ = done.send(Ok(()));
                            hold_socket(ws, target.proto, stats).await;
                            return;
                        }
                        Ok(Err(err)) => {
                            if std::env::var_os("GATEWAY_LOAD_DEBUG").is_some() {
                                eprintln!("{user}: {err:#}");
                            }
                            last = err.to_string()
                        }
                        Err(_) => last = "handshake timeout".to_owned(),
                    }
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                }
                let _ = done.send(Err(last));
            });
        }
    }
    drop(done_tx);
    let (mut ready, mut failed, mut first_error) = (0u64, 0u64, None);
    for _ in 0..users * per_user {
        let Some(result) = done_rx.recv().await else {
            break;
        };
        match result {
            Ok(()) => ready += 1,
            Err(err) => {
                failed += 1;
                first_error.get_or_insert(err);
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({ "ready": ready, "failed": failed, "error": first_error })
    );
    // Commands arrive on a plain thread: the runtime only has to answer them.
    let (line_tx, mut lines) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        match line.trim() {
            "reset" => {
                stats.reset();
                println!("{{\"ok\":true}}");
            }
            "report" => println!("{}", serde_json::to_string(&stats.report())?),
            "quit" => break,
            other => eprintln!("clients: unknown command {other:?}"),
        }
    }
    std::process::exit(0);
}

// ---------------------------------------------------------------------------------------
// The orchestrator.

struct Plan {
    target: Target,
    contender: String,
    http: String,
    server_pid: u32,
    service_key: String,
    users: usize,
    per_user: usize,
    procs: usize,
    rates: Vec<u32>,
    window: Duration,
    warmup: Duration,
    concurrency: usize,
    settle: Duration,
    idle_only: bool,
}

/// One line of results.
#[derive(Debug, Serialize, Deserialize)]
struct RunResult {
    contender: String,
    sockets: usize,
    connected: u64,
    failed: u64,
    first_error: Option<String>,
    rss_before_kib: u64,
    rss_idle_kib: u64,
    rss_per_idle_conn_kib: f64,
    phases: Vec<Phase>,
    /// Sockets that closed during the run.
    closed: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Phase {
    name: String,
    target_rate: Option<u32>,
    publish_per_s: f64,
    publish_errors: u64,
    delivered_per_s: f64,
    deliveries_per_publish: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Server CPU over the window, percent of one core.
    server_cpu_pct: f64,
}

struct Child {
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

fn read_status(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("{field} of {pid}"))?;
    Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
}

/// utime + stime of the process, seconds.
fn cpu_secs(pid: u32) -> f64 {
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

async fn run(plan: Plan) -> anyhow::Result<RunResult> {
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
struct PublishCounts {
    ok: AtomicU64,
    errors: AtomicU64,
}

/// Publishes at `rate` per second (or closed-loop at saturation) for warm-up + `window`;
/// with `children`, reads their deliveries over the window.
async fn publish_phase(
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
async fn post_event(
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

// ---------------------------------------------------------------------------------------
// The table.

fn report(files: &[PathBuf]) -> anyhow::Result<()> {
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
