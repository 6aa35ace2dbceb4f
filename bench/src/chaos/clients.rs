//! The users of a chaos run: sockets that reconnect and resume, a publisher and a chatter
//! per user, and what each of them saw.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis_ssot::stores::events::EventId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::ChaosConfig;
use super::procs::{SECRET, SERVICE_KEY};

/// How long a publish may take before the client gives up on it (not acknowledged).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
/// A chat message not acknowledged this long after it was last sent is sent again (same id).
const RESEND_AFTER: Duration = Duration::from_secs(2);

/// An acknowledged publish.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Acked {
    pub(crate) id: EventId,
    pub(crate) at: Instant,
}

/// Chat messages of one user.
#[derive(Default)]
pub(crate) struct Chats {
    /// Not acknowledged yet: message id → when last sent (None: not yet).
    pub(crate) pending: BTreeMap<String, Option<Instant>>,
    /// Acknowledged: message id → (job, when).
    pub(crate) acked: BTreeMap<String, (String, Instant)>,
    /// The same message acknowledged with two different jobs.
    pub(crate) job_conflicts: Vec<String>,
}

/// What one socket (across its reconnects) saw.
#[derive(Default)]
pub(crate) struct SocketLog {
    pub(crate) gateway: usize,
    /// Event ids in arrival order (only ids above the previous one are kept).
    pub(crate) received: Vec<EventId>,
    /// Events that came again or out of order.
    pub(crate) disorder: Vec<String>,
    /// Close codes received from the gateway, and 1006 for a broken connection.
    pub(crate) closes: BTreeMap<u16, u64>,
    pub(crate) connects: u64,
    /// Refused handshakes by HTTP status (0: no connection at all).
    pub(crate) refusals: BTreeMap<u16, u64>,
    pub(crate) degraded: u64,
    /// The last `status` frame's `redis` (`ok`, `degraded`), if any.
    pub(crate) last_status: Option<String>,
    /// `error` frames by code.
    pub(crate) errors: BTreeMap<String, u64>,
}

/// One user.
pub(crate) struct UserLog {
    pub(crate) name: String,
    pub(crate) acked: Mutex<Vec<Acked>>,
    pub(crate) chats: Mutex<Chats>,
    pub(crate) sockets: Vec<Mutex<SocketLog>>,
    /// The index of the socket that chats.
    pub(crate) chat_socket: usize,
}

/// Everything the clients saw.
pub(crate) struct Record {
    pub(crate) users: Vec<UserLog>,
    stop_sockets: AtomicBool,
}

/// Locks a log; a panicked client task leaves its data usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Record {
    pub(crate) fn new(config: &ChaosConfig) -> Arc<Record> {
        // Fresh user names per run: their streams start empty.
        let run = format!("{:x}", config.seed & 0xffff_ffff);
        let users = (0..config.users)
            .map(|u| UserLog {
                name: format!("c{run}u{u}"),
                acked: Mutex::new(Vec::new()),
                chats: Mutex::new(Chats::default()),
                sockets: (0..config.sockets_per_user.max(2))
                    .map(|s| {
                        Mutex::new(SocketLog {
                            gateway: s % 2,
                            ..SocketLog::default()
                        })
                    })
                    .collect(),
                chat_socket: u % 2,
            })
            .collect();
        Arc::new(Record {
            users,
            stop_sockets: AtomicBool::new(false),
        })
    }

    pub(crate) fn stop_sockets(&self) {
        self.stop_sockets.store(true, Ordering::Release);
    }

    fn sockets_stopping(&self) -> bool {
        self.stop_sockets.load(Ordering::Acquire)
    }
}

/// Publish outcomes over the whole run.
#[derive(Debug, Default, Clone)]
pub(crate) struct Publishes {
    /// HTTP status → count (0: no answer: connection refused, broken, or timed out).
    pub(crate) by_status: BTreeMap<u16, u64>,
}

/// Starts every socket, publisher and chatter; returns once `stop` is set and the publishers
/// and chatters ended (the sockets go on until [`Record::stop_sockets`]).
pub(crate) async fn run_load(
    config: ChaosConfig,
    ports: Vec<u16>,
    record: Arc<Record>,
    stop: Arc<AtomicBool>,
) -> Publishes {
    for (u, user) in record.users.iter().enumerate() {
        let token = token(&user.name);
        for s in 0..user.sockets.len() {
            let seed = config.seed ^ ((u as u64) << 20) ^ ((s as u64) << 8) ^ 0x5eed;
            tokio::spawn(socket(
                Arc::clone(&record),
                u,
                s,
                ports[s % 2],
                token.clone(),
                seed,
            ));
        }
    }
    let mut publishers = Vec::new();
    for u in 0..record.users.len() {
        let seed = config.seed ^ ((u as u64) << 24) ^ 0x9b;
        publishers.push(tokio::spawn(publisher(
            Arc::clone(&record),
            u,
            ports.clone(),
            config.publish_per_user_per_sec,
            Arc::clone(&stop),
            seed,
        )));
        publishers.push(tokio::spawn(chatter(
            Arc::clone(&record),
            u,
            config.chat_every,
            Arc::clone(&stop),
            seed ^ 0xc4a7,
        )));
    }
    let mut total = Publishes::default();
    for task in publishers {
        if let Ok(p) = task.await {
            for (status, n) in p.by_status {
                *total.by_status.entry(status).or_default() += n;
            }
        }
    }
    total
}

fn token(user: &str) -> String {
    crate::hs256_token(SECRET, user)
}

/// One logical socket: connects to its gateway, resumes after the last event it has after
/// every drop, until the run stops.
async fn socket(record: Arc<Record>, u: usize, s: usize, port: u16, token: String, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let user = &record.users[u];
    while !record.sockets_stopping() {
        let after = lock(&user.sockets[s])
            .received
            .last()
            .map_or_else(|| "0-0".to_owned(), EventId::to_string);
        let url = format!("ws://127.0.0.1:{port}/v1/ws?after={after}");
        let mut request = url.into_client_request().expect("a valid URL");
        request.headers_mut().insert(
            "Authorization",
            format!("Bearer {token}").parse().expect("a valid header"),
        );
        match tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(request),
        )
        .await
        {
            Ok(Ok((ws, _))) => {
                lock(&user.sockets[s]).connects += 1;
                connected(&record, u, s, ws).await;
            }
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
                *lock(&user.sockets[s])
                    .refusals
                    .entry(response.status().as_u16())
                    .or_default() += 1;
            }
            Ok(Err(_)) | Err(_) => {
                *lock(&user.sockets[s]).refusals.entry(0).or_default() += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..400))).await;
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads one connection until it ends; the chat socket also sends the user's messages.
async fn connected(record: &Record, u: usize, s: usize, ws: Ws) {
    let user = &record.users[u];
    let chats = s == user.chat_socket;
    let (mut sink, mut stream) = ws.split();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    // Messages sent on an earlier connection are sent again at once on this one.
    if chats {
        for sent in lock(&user.chats).pending.values_mut() {
            *sent = None;
        }
    }
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => on_frame(user, s, text.as_str()),
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    *lock(&user.sockets[s]).closes.entry(code).or_default() += 1;
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    *lock(&user.sockets[s]).closes.entry(1006).or_default() += 1;
                    return;
                }
            },
            _ = tick.tick() => {
                if record.sockets_stopping() {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
                if chats {
                    let due: Vec<String> = {
                        let mut c = lock(&user.chats);
                        let now = Instant::now();
                        c.pending
                            .iter_mut()
                            .filter(|(_, sent)| sent.is_none_or(|t| now - t > RESEND_AFTER))
                            .map(|(id, sent)| {
                                *sent = Some(now);
                                id.clone()
                            })
                            .collect()
                    };
                    for id in due {
                        let n = id.rsplit('m').next().unwrap_or("0");
                        let frame = serde_json::json!({
                            "type": "message", "id": id, "text": format!("what is {n} + 1?")
                        });
                        if sink.send(Message::Text(frame.to_string().into())).await.is_err() {
                            *lock(&user.sockets[s]).closes.entry(1006).or_default() += 1;
                            return;
                        }
                    }
                }
            }
        }
    }
}

fn on_frame(user: &UserLog, s: usize, text: &str) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        *lock(&user.sockets[s])
            .errors
            .entry("client:not_json".into())
            .or_default() += 1;
        return;
    };
    match v["type"].as_str() {
        Some("event") => {
            let Some(id) = v["id"].as_str().and_then(|i| i.parse::<EventId>().ok()) else {
                return;
            };
            let mut log = lock(&user.sockets[s]);
            match log.received.last() {
                Some(&last) if id <= last => {
                    let what = if log.received.binary_search(&id).is_ok() {
                        "again"
                    } else {
                        "out of order"
                    };
                    log.disorder.push(format!("{id} {what} after {last}"));
                }
                _ => log.received.push(id),
            }
        }
        Some("ack") => {
            let (Some(message), Some(job)) = (v["ref"].as_str(), v["job"].as_str()) else {
                return;
            };
            let mut chats = lock(&user.chats);
            chats.pending.remove(message);
            match chats.acked.get(message) {
                Some((known, _)) if known != job => {
                    let conflict = format!("{message}: jobs {known} and {job}");
                    chats.job_conflicts.push(conflict);
                }
                Some(_) => {}
                None => {
                    chats
                        .acked
                        .insert(message.to_owned(), (job.to_owned(), Instant::now()));
                }
            }
        }
        Some("status") => {
            let mut log = lock(&user.sockets[s]);
            if v["redis"] == "degraded" {
                log.degraded += 1;
            }
            log.last_status = v["redis"].as_str().map(str::to_owned);
        }
        Some("error") => {
            let code = v["code"].as_str().unwrap_or("?").to_owned();
            *lock(&user.sockets[s]).errors.entry(code).or_default() += 1;
        }
        _ => {}
    }
}

/// Publishes to the user through a random gateway, one request at a time, at about `rate`
/// per second, until `stop`.
async fn publisher(
    record: Arc<Record>,
    u: usize,
    ports: Vec<u16>,
    rate: f64,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> Publishes {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Publishes::default();
    let user = &record.users[u];
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        n += 1;
        let port = ports[rng.random_range(0..ports.len())];
        let body = format!(r#"{{"event":"chaos","data":{{"n":{n}}}}}"#);
        let answer = tokio::time::timeout(PUBLISH_TIMEOUT, post(port, &user.name, &body)).await;
        let status = match answer {
            Ok(Ok((200, body))) => {
                let id = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["id"].as_str().and_then(|i| i.parse::<EventId>().ok()));
                if let Some(id) = id {
                    lock(&user.acked).push(Acked {
                        id,
                        at: Instant::now(),
                    });
                }
                200
            }
            Ok(Ok((status, _))) => status,
            Ok(Err(_)) | Err(_) => 0,
        };
        *out.by_status.entry(status).or_default() += 1;
        let pause = (1.0 / rate) * rng.random_range(0.5..1.5);
        tokio::time::sleep(Duration::from_secs_f64(pause)).await;
    }
    out
}

/// One HTTP/1.1 publish; (status, body).
async fn post(port: u16, user: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!(
        "POST /v1/users/{user}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SERVICE_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))?;
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    Ok((status, body))
}

/// Adds a chat message for the user's chat socket to send every `every` (jittered).
async fn chatter(
    record: Arc<Record>,
    u: usize,
    every: Duration,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> Publishes {
    let mut rng = StdRng::seed_from_u64(seed);
    let user = &record.users[u];
    let mut k = 0u64;
    tokio::time::sleep(every.mul_f64(rng.random_range(0.0..1.0))).await;
    while !stop.load(Ordering::Acquire) {
        k += 1;
        lock(&user.chats).pending.insert(format!("m{k}"), None);
        tokio::time::sleep(every.mul_f64(rng.random_range(0.5..1.5))).await;
    }
    Publishes::default()
}
