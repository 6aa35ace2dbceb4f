//! Test harness: gateways bound on port 0, WebSocket clients, a keep-alive HTTP publisher.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{EncodingKey, Header};
use redis_ssot::stores::events::EventId;
use redis_ssot::stores::tokens::TokenConfig;
use redis_ssot::{RedisManager, RedisOptions};
use ssot_gateway::{Gateway, GatewayConfig, GatewayOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) const SECRET: &[u8] = b"test-secret-0123456789abcdef0123";
pub(crate) const SERVICE_KEY: &str = "service-key-0123456789";

/// Manager settings that notice faults quickly (the kit's).
pub(crate) async fn manager(url: &str) -> RedisManager {
    let config = RedisOptions::from_toml(&ssot_testkit::fast_manager_toml(url, "gw"))
        .unwrap()
        .resolve()
        .unwrap();
    RedisManager::connect(config)
        .await
        .expect("manager connects")
}

/// An event id of the gateway's wire format, parsed and ordered as the library does.
pub(crate) fn parse_id(id: &str) -> EventId {
    id.parse().unwrap()
}

/// A running in-process gateway.
pub(crate) struct TestGateway {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestGateway {
    pub(crate) async fn start(manager: RedisManager) -> TestGateway {
        TestGateway::start_with(manager, GatewayOptions::default()).await
    }

    pub(crate) async fn start_with(manager: RedisManager, options: GatewayOptions) -> TestGateway {
        TestGateway::start_tuned(manager, options, |_| {}).await
    }

    /// Starts with `tune` applied to the resolved settings: for those `[gateway]` options
    /// cannot express (the `[events]` table's).
    pub(crate) async fn start_tuned(
        manager: RedisManager,
        mut options: GatewayOptions,
        tune: impl FnOnce(&mut GatewayConfig),
    ) -> TestGateway {
        options.listen = Some("127.0.0.1:0".into());
        options.service_key = Some(SERVICE_KEY.into());
        let mut config = options
            .resolve(TokenConfig::hs256(SECRET).unwrap())
            .unwrap();
        tune(&mut config);
        let gateway = Gateway::bind(config, manager).await.unwrap();
        let addr = gateway.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            gateway
                .serve(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        TestGateway {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful shutdown; returns when serve() returned.
    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .unwrap()
                .unwrap();
        }
    }

    pub(crate) fn ws_url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A valid HS256 token for `user`, expiring in `ttl_secs`.
pub(crate) fn token(user: &str, ttl_secs: i64) -> String {
    token_with(serde_json::json!({
        "sub": user,
        "exp": (now() as i64 + ttl_secs),
        "iat": now(),
        "jti": format!("jti-{user}-{}", rand_suffix()),
    }))
}

pub(crate) fn token_with(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

pub(crate) fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) ^ (std::process::id() as u64) << 32
}

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a socket with the token in `Authorization`, optionally resuming.
pub(crate) async fn connect(
    url: &str,
    token: &str,
    after: Option<&str>,
) -> Result<Ws, tungstenite::Error> {
    let url = match after {
        Some(after) => format!("{url}?after={after}"),
        None => url.to_owned(),
    };
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(ws)
}

/// Opens a socket and waits for its first status frame.
pub(crate) async fn connect_ready(url: &str, token: &str) -> (Ws, Received) {
    let mut ws = connect(url, token, None).await.unwrap();
    let got = first_status(&mut ws, Duration::from_secs(3), "no status frame").await;
    (ws, got)
}

/// Reads until the socket's first status frame, at most `within`; fails with `what`.
pub(crate) async fn first_status(ws: &mut Ws, within: Duration, what: &str) -> Received {
    let mut got = Received::default();
    assert!(
        read_until(ws, &mut got, within, |r| !r.statuses.is_empty()).await,
        "{what}"
    );
    got
}

/// The HTTP status of a refused handshake.
pub(crate) fn refused_status(err: &tungstenite::Error) -> u16 {
    match err {
        tungstenite::Error::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

/// The stable error code in the JSON body of a refused handshake.
pub(crate) fn refused_code(err: &tungstenite::Error) -> String {
    let tungstenite::Error::Http(response) = err else {
        panic!("expected an HTTP refusal, got {err}")
    };
    let body: serde_json::Value =
        serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
    body["error"]["code"].as_str().unwrap().to_owned()
}

/// What a client saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Received {
    pub(crate) events: Vec<(String, serde_json::Value)>,
    pub(crate) statuses: Vec<String>,
    pub(crate) errors: Vec<String>,
    pub(crate) close: Option<u16>,
}

/// Reads frames until `done` says so or `within` passes.
pub(crate) async fn read_until(
    ws: &mut Ws,
    received: &mut Received,
    within: Duration,
    mut done: impl FnMut(&Received) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while !done(received) {
        let next = tokio::time::timeout_at(deadline, ws.next()).await;
        match next {
            Err(_) => return false,
            Ok(None) => return done(received),
            Ok(Some(Err(_))) => return done(received),
            Ok(Some(Ok(msg))) => record(msg, received),
        }
    }
    true
}

/// How long a socket must stay silent after the expected events before their count is
/// final: a late duplicate or stray event would arrive within it.
pub(crate) const QUIET: Duration = Duration::from_millis(300);

/// Reads until `received` holds `count` events (within `within`), then [`QUIET`] longer;
/// true when it then holds exactly `count`, so an extra event fails the caller.
pub(crate) async fn read_events(
    ws: &mut Ws,
    received: &mut Received,
    count: usize,
    within: Duration,
) -> bool {
    if !read_until(ws, received, within, |r| r.events.len() >= count).await {
        return false;
    }
    read_until(ws, received, QUIET, |r| r.events.len() > count).await;
    received.events.len() == count
}

pub(crate) fn record(msg: Message, received: &mut Received) {
    match msg {
        Message::Text(text) => {
            let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
            match v["type"].as_str().unwrap() {
                "event" => received
                    .events
                    .push((v["id"].as_str().unwrap().to_owned(), v["data"].clone())),
                "status" => received
                    .statuses
                    .push(v["redis"].as_str().unwrap().to_owned()),
                "error" => received.errors.push(v["code"].as_str().unwrap().to_owned()),
                _ => {}
            }
        }
        Message::Close(frame) => {
            received.close = Some(frame.map_or(1005, |f: CloseFrame| u16::from(f.code)));
        }
        _ => {}
    }
}

/// Sends a text frame.
pub(crate) async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.into())).await.unwrap();
}

/// A minimal keep-alive HTTP/1.1 client for the publish API.
pub(crate) struct Publisher {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

/// The status of an [`HttpAnswer`] that never came: the connection failed (reset, closed
/// or refused) before a whole answer was read.
pub(crate) const RESET: u16 = 0;

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct HttpAnswer {
    pub(crate) status: u16,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: String,
}

impl Publisher {
    pub(crate) fn new(addr: SocketAddr) -> Publisher {
        Publisher { addr, conn: None }
    }

    /// Publishes `data` as event `name` to `user`; the id when acknowledged.
    pub(crate) async fn publish(
        &mut self,
        user: &str,
        name: &str,
        data: serde_json::Value,
    ) -> Result<String, HttpAnswer> {
        let body = serde_json::json!({ "event": name, "data": data }).to_string();
        let answer = self
            .request(
                "POST",
                &format!("/v1/users/{user}/events"),
                Some(SERVICE_KEY),
                &body,
            )
            .await;
        match answer {
            Ok(a) if a.status == 200 => {
                let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
                Ok(v["id"].as_str().unwrap().to_owned())
            }
            Ok(a) => Err(a),
            Err(e) => Err(HttpAnswer {
                status: RESET,
                headers: HashMap::new(),
                body: e.to_string(),
            }),
        }
    }

    /// One request on the kept-alive connection (a new one when there is none). An I/O
    /// error is returned, never retried: a reset must be seen by the test, not hidden.
    pub(crate) async fn request(
        &mut self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: &str,
    ) -> std::io::Result<HttpAnswer> {
        self.request_with(method, path, bearer, &[], body).await
    }

    /// [`Publisher::request`] with extra headers (`name`, `value`).
    pub(crate) async fn request_with(
        &mut self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        extra: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<HttpAnswer> {
        if self.conn.is_none() {
            self.conn = Some(BufReader::new(TcpStream::connect(self.addr).await?));
        }
        let conn = self.conn.as_mut().unwrap();
        let auth = bearer
            .map(|k| format!("Authorization: Bearer {k}\r\n"))
            .unwrap_or_default();
        let auth: String = std::iter::once(auth)
            .chain(
                extra
                    .iter()
                    .map(|(name, value)| format!("{name}: {value}\r\n")),
            )
            .collect();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let result = async {
            conn.get_mut().write_all(req.as_bytes()).await?;
            read_answer(conn).await
        }
        .await;
        let closes = result.as_ref().map_or(true, |answer| {
            answer
                .headers
                .get("connection")
                .is_some_and(|c| c == "close")
        });
        if closes {
            self.conn = None;
        }
        result
    }
}

async fn read_answer(conn: &mut BufReader<TcpStream>) -> std::io::Result<HttpAnswer> {
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = HashMap::new();
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    conn.read_exact(&mut body).await?;
    Ok(HttpAnswer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A plain GET.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> HttpAnswer {
    Publisher::new(addr)
        .request("GET", path, None, "")
        .await
        .unwrap()
}

/// A WebSocket handshake made on a raw TCP connection, without a client library: what
/// follows is read (or left unread) as bytes, so the test adds no buffers or parsing of its
/// own to what it measures.
pub(crate) struct RawUpgrade {
    /// The connection, past the answer's headers (and body, when refused).
    pub(crate) conn: BufReader<TcpStream>,
    /// The HTTP status: 101 when upgraded.
    pub(crate) status: u16,
    /// The body of a refusal (empty when upgraded).
    pub(crate) body: String,
}

/// Upgrades a raw connection with `token`, resuming after `after`.
pub(crate) async fn raw_upgrade(addr: SocketAddr, token: &str, after: &str) -> RawUpgrade {
    let mut conn = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let request = format!(
        "GET /v1/ws?after={after} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    conn.get_mut().write_all(request.as_bytes()).await.unwrap();
    let answer = read_answer(&mut conn).await.unwrap();
    RawUpgrade {
        conn,
        status: answer.status,
        body: answer.body,
    }
}
