//! `clients`: one process holding a share of the WebSockets, and the latency histogram it
//! reports.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::{Proto, Target, now_us};

// ---------------------------------------------------------------------------------------
// Latency histogram: log-linear buckets, under 1% error, mergeable across processes.

pub(crate) const BUCKETS: usize = 256 + 40 * 128;

pub(crate) fn bucket(v: u64) -> usize {
    if v < 256 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() as usize;
    let m = ((v >> (e - 7)) & 127) as usize;
    (256 + (e - 8) * 128 + m).min(BUCKETS - 1)
}

/// The middle of bucket `i`, in µs.
pub(crate) fn bucket_value(i: usize) -> u64 {
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
pub(crate) struct ClientReport {
    pub(crate) received: u64,
    pub(crate) max_us: u64,
    /// `(bucket, count)` of non-empty buckets.
    pub(crate) buckets: Vec<(usize, u64)>,
    pub(crate) open: u64,
    pub(crate) closed: u64,
}

pub(crate) struct Stats {
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
pub(crate) fn embedded_time(text: &str) -> Option<u64> {
    let at = text.find("\"t\":")? + 4;
    let digits = text[at..].trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

// ---------------------------------------------------------------------------------------
// Client sockets.

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

pub(crate) fn ssot_token(secret: &str, user: &str, n: usize) -> anyhow::Result<String> {
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

pub(crate) async fn open_socket(target: &Target, user: &str, n: usize) -> anyhow::Result<Ws> {
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

pub(crate) async fn hold_socket(mut ws: Ws, proto: Proto, stats: Arc<Stats>) {
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

pub(crate) async fn clients(
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
