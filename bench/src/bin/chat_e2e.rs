//! End-to-end chat round trips: users send messages through `ssot serve`, `ssot worker` runs
//! the demo agent, and the clients time message → `agent_completed`.
//!
//! `chat_e2e --ws ws://127.0.0.1:8080/v1/ws --secret S --users 1000 saturate --seconds 20`
//! keeps one message in flight per user; `rate --per-sec 200 --seconds 15` sends at a fixed
//! rate over all users. Prints one JSON line.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{EncodingKey, Header};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Parser)]
struct Args {
    /// The gateway's WebSocket URL.
    #[arg(long)]
    ws: String,
    /// SSOT_JWT_SECRET of the gateway.
    #[arg(long)]
    secret: String,
    /// Concurrent users (one socket each).
    #[arg(long, default_value_t = 1000)]
    users: usize,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Clone, Copy)]
enum Mode {
    /// One message in flight per user, for `seconds`.
    Saturate {
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// `per_sec` messages per second spread over all users, for `seconds`.
    Rate {
        #[arg(long)]
        per_sec: u64,
        #[arg(long, default_value_t = 15)]
        seconds: u64,
    },
}

/// Per user: messages sent and when, keyed by message id.
type Pending = Arc<Mutex<HashMap<String, Instant>>>;

struct User {
    outbox: mpsc::UnboundedSender<String>,
}

fn token(secret: &str, user: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let claims = serde_json::json!({ "sub": user, "exp": exp });
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(usize, Duration)>();
    let mut users = Vec::with_capacity(args.users);
    for u in 0..args.users {
        let mut request = args.ws.as_str().into_client_request()?;
        let bearer = format!("Bearer {}", token(&args.secret, &format!("bench{u}")));
        request
            .headers_mut()
            .insert("Authorization", bearer.parse()?);
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        let (mut sink, mut stream) = ws.split();
        let (outbox, mut out_rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(frame) = out_rx.recv().await {
                if sink.send(Message::Text(frame.into())).await.is_err() {
                    return;
                }
            }
        });
        let pending = Arc::clone(&pending);
        let done = done_tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(Message::Text(text))) = stream.next().await {
                let v: serde_json::Value = match serde_json::from_str(text.as_str()) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                if v["type"] == "event" && v["event"] == "agent_completed" {
                    let id = v["data"]["message_id"].as_str().unwrap_or("").to_owned();
                    if let Some(sent) = pending.lock().unwrap().remove(&id) {
                        let _ = done.send((u, sent.elapsed()));
                    }
                }
            }
        });
        users.push(User { outbox });
    }
    // Message ids are idempotency keys: make them unique per run, or a second run against the
    // same gateway would be acknowledged with the first run's jobs and never complete.
    let run = format!("{:x}", std::process::id());
    let mut seq = 0u64;
    let mut send = |u: usize, pending: &Pending| {
        seq += 1;
        let id = format!("b{u}-{run}-{seq}");
        pending.lock().unwrap().insert(id.clone(), Instant::now());
        let frame =
            serde_json::json!({"type": "message", "id": id, "text": format!("what is {seq} + 1?")});
        let _ = users[u].outbox.send(frame.to_string());
    };
    let mut latencies: Vec<Duration> = Vec::new();
    let (offered, seconds) = match args.mode {
        Mode::Saturate { seconds } => {
            for u in 0..args.users {
                send(u, &pending);
            }
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let start = Instant::now();
            while let Ok(Some((u, took))) =
                tokio::time::timeout_at(deadline.into(), done_rx.recv()).await
            {
                latencies.push(took);
                send(u, &pending);
            }
            (None, start.elapsed().as_secs_f64())
        }
        Mode::Rate { per_sec, seconds } => {
            let total = per_sec * seconds;
            let interval = Duration::from_secs_f64(1.0 / per_sec as f64);
            let start = Instant::now();
            for n in 0..total {
                let at = start + interval.mul_f64(n as f64);
                tokio::time::sleep_until(at.into()).await;
                send(n as usize % args.users, &pending);
                while let Ok((_, took)) = done_rx.try_recv() {
                    latencies.push(took);
                }
            }
            let drain = Instant::now() + Duration::from_secs(10);
            while latencies.len() < total as usize {
                match tokio::time::timeout_at(drain.into(), done_rx.recv()).await {
                    Ok(Some((_, took))) => latencies.push(took),
                    _ => break,
                }
            }
            (Some(per_sec), start.elapsed().as_secs_f64())
        }
    };
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let lost = pending.lock().unwrap().len();
    println!(
        "{}",
        serde_json::json!({
            "mode": if offered.is_some() { "rate" } else { "saturate" },
            "offered_per_sec": offered,
            "users": args.users,
            "completed": latencies.len(),
            "runs_per_sec": latencies.len() as f64 / seconds,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
            "unfinished": lost,
        })
    );
    Ok(())
}
