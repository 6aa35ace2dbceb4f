//! One client process of the soak (`bench/soak/run.sh`): holds `--users` × `--sockets`
//! WebSockets on a gateway (resuming with `?after=` after any close), publishes to its users
//! over HTTP and sends chat messages, at steady rates, for `--seconds`. Several such processes
//! share the 10,000 sockets: one process may hold 20,000 open files on the soak machine.
//!
//! Prints one JSON line of counters every 10 s and a last one at the end.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Parser)]
struct Args {
    /// The gateway's address (`127.0.0.1:8080`).
    #[arg(long)]
    gateway: String,
    /// SSOT_JWT_SECRET of the gateway.
    #[arg(long)]
    secret: String,
    /// SSOT_SERVICE_KEY of the gateway.
    #[arg(long)]
    service_key: String,
    /// Users of this process: `soak<first>`..
    #[arg(long, default_value_t = 1250)]
    users: usize,
    #[arg(long, default_value_t = 0)]
    first_user: usize,
    /// Sockets per user.
    #[arg(long, default_value_t = 2)]
    sockets: usize,
    /// Publishes per second from this process (to random users of it).
    #[arg(long, default_value_t = 10.0)]
    publish_per_sec: f64,
    /// Chat messages per second from this process.
    #[arg(long, default_value_t = 1.0)]
    chat_per_sec: f64,
    #[arg(long, default_value_t = 3600)]
    seconds: u64,
}

#[derive(Default)]
struct Counters {
    open: AtomicU64,
    connects: AtomicU64,
    events: AtomicU64,
    acks: AtomicU64,
    closes: Mutex<BTreeMap<u16, u64>>,
    refused: AtomicU64,
    published: Mutex<BTreeMap<u16, u64>>,
}

type Outbox = tokio::sync::mpsc::UnboundedSender<String>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let counters = Arc::new(Counters::default());
    let end = Instant::now() + Duration::from_secs(args.seconds);
    // One outbox per user: its first socket sends the user's chat messages.
    let mut outboxes: Vec<Outbox> = Vec::new();
    for u in 0..args.users {
        let user = format!("soak{}", args.first_user + u);
        let token = ssot_bench::hs256_token(&args.secret, &user);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        outboxes.push(tx);
        let mut rx = Some(rx);
        for _ in 0..args.sockets {
            tokio::spawn(socket(
                Arc::clone(&args),
                Arc::clone(&counters),
                token.clone(),
                rx.take(),
                end,
            ));
            // Ramp: about 500 connects per second per process.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    tokio::spawn(publisher(Arc::clone(&args), Arc::clone(&counters), end));
    tokio::spawn(chatter(Arc::clone(&args), outboxes, end));
    let started = Instant::now();
    loop {
        let done = Instant::now() >= end;
        let c = &counters;
        println!(
            "{}",
            serde_json::json!({
                "t": started.elapsed().as_secs(),
                "open": c.open.load(Ordering::Relaxed),
                "connects": c.connects.load(Ordering::Relaxed),
                "refused": c.refused.load(Ordering::Relaxed),
                "events": c.events.load(Ordering::Relaxed),
                "acks": c.acks.load(Ordering::Relaxed),
                "closes": *c.closes.lock().unwrap(),
                "published": *c.published.lock().unwrap(),
            })
        );
        if done {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

async fn socket(
    args: Arc<Args>,
    counters: Arc<Counters>,
    token: String,
    mut chat: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
    end: Instant,
) {
    let mut after = String::new();
    while Instant::now() < end {
        let url = if after.is_empty() {
            format!("ws://{}/v1/ws", args.gateway)
        } else {
            format!("ws://{}/v1/ws?after={after}", args.gateway)
        };
        let mut request = url.into_client_request().expect("a valid URL");
        request.headers_mut().insert(
            "Authorization",
            format!("Bearer {token}").parse().expect("a valid header"),
        );
        let Ok(Ok((ws, _))) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(request),
        )
        .await
        else {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        };
        counters.connects.fetch_add(1, Ordering::Relaxed);
        counters.open.fetch_add(1, Ordering::Relaxed);
        let (mut sink, mut stream) = ws.split();
        let code = loop {
            let outgoing = async {
                match &mut chat {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        let v: serde_json::Value =
                            serde_json::from_str(text.as_str()).unwrap_or_default();
                        match v["type"].as_str() {
                            Some("event") => {
                                counters.events.fetch_add(1, Ordering::Relaxed);
                                if let Some(id) = v["id"].as_str() {
                                    after = id.to_owned();
                                }
                            }
                            Some("ack") => {
                                counters.acks.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {}
                        }
                    }
                    Some(Ok(Message::Close(frame))) => break frame.map_or(1005, |f| u16::from(f.code)),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break 1006,
                },
                frame = outgoing => match frame {
                    Some(frame) => {
                        if sink.send(Message::Text(frame.into())).await.is_err() {
                            break 1006;
                        }
                    }
                    None => chat = None,
                },
                () = tokio::time::sleep_until(end.into()) => {
                    let _ = sink.send(Message::Close(None)).await;
                    break 1000;
                }
            }
        };
        counters.open.fetch_sub(1, Ordering::Relaxed);
        *counters.closes.lock().unwrap().entry(code).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(500 + rand::random_range(0..2000))).await;
    }
}

async fn publisher(args: Arc<Args>, counters: Arc<Counters>, end: Instant) {
    let interval = Duration::from_secs_f64(1.0 / args.publish_per_sec);
    let mut n = 0u64;
    let mut next = Instant::now();
    while Instant::now() < end {
        n += 1;
        let user = format!(
            "soak{}",
            args.first_user + rand::random_range(0..args.users)
        );
        let status = tokio::time::timeout(Duration::from_secs(5), post(&args, &user, n))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
        *counters
            .published
            .lock()
            .unwrap()
            .entry(status)
            .or_default() += 1;
        next += interval;
        tokio::time::sleep_until(next.into()).await;
    }
}

/// One publish over HTTP/1.1; the status.
async fn post(args: &Args, user: &str, n: u64) -> std::io::Result<u16> {
    let body = format!(
        r#"{{"event":"soak","data":{{"n":{n},"pad":"{}"}}}}"#,
        "x".repeat(200)
    );
    let mut stream = tokio::net::TcpStream::connect(&args.gateway).await?;
    let request = format!(
        "POST /v1/users/{user}/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        args.gateway,
        args.service_key,
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))
}

async fn chatter(args: Arc<Args>, outboxes: Vec<Outbox>, end: Instant) {
    let interval = Duration::from_secs_f64(1.0 / args.chat_per_sec);
    let run = std::process::id();
    let mut k = 0u64;
    let mut next = Instant::now();
    while Instant::now() < end {
        k += 1;
        let u = rand::random_range(0..outboxes.len());
        let frame = serde_json::json!({
            "type": "message", "id": format!("s{run}-{k}"), "text": format!("what is {k} + 1?")
        });
        let _ = outboxes[u].send(frame.to_string());
        next += interval;
        tokio::time::sleep_until(next.into()).await;
    }
}
