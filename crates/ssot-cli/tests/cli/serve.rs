//! `ssot token` and `ssot serve` as processes: SIGTERM, a gateway killed under its clients.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use ssot_testkit::RedisServer;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::*;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, token: &str, after: Option<&str>) -> Ws {
    try_connect(url, token, after).await.unwrap()
}

async fn try_connect(
    url: &str,
    token: &str,
    after: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let url = match after {
        Some(a) => format!("{url}?after={a}"),
        None => url.to_owned(),
    };
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    Ok(tokio_tungstenite::connect_async(request).await?.0)
}

/// The next frame of a type, or the close code as `close:<code>`.
async fn next_frame(ws: &mut Ws, within: Duration) -> Option<serde_json::Value> {
    let msg = tokio::time::timeout(within, ws.next()).await.ok()??;
    match msg {
        Ok(Message::Text(t)) => serde_json::from_str(t.as_str()).ok(),
        Ok(Message::Close(f)) => {
            Some(serde_json::json!({"type": "close", "code": f.map(|f| u16::from(f.code))}))
        }
        _ => Some(serde_json::json!({"type": "other"})),
    }
}

#[test]
fn token_needs_a_secret_and_a_valid_user() {
    let out = ssot(&["token", "--user", "alice"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("tokens.secret"), "{}", text(&out));
    let out = ssot(&["token", "--user", "a:b"], &[("SSOT_JWT_SECRET", SECRET)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("invalid user id"), "{}", text(&out));
    assert_eq!(token("alice").split('.').count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sockets_with_1012_and_exits_0() {
    let server = RedisServer::start();
    let mut served = Served::start(&server.url());
    let mut ws = connect(&served.ws_url(), &token("kim"), None).await;
    assert_eq!(
        next_frame(&mut ws, Duration::from_secs(3)).await.unwrap()["type"],
        "status"
    );
    served.signal("-TERM");
    let close = loop {
        let f = next_frame(&mut ws, Duration::from_secs(5))
            .await
            .expect("a close frame");
        if f["type"] == "close" {
            break f;
        }
    };
    assert_eq!(close["code"], 1012);
    let status = tokio::task::spawn_blocking(move || served.child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "exit 0 after drain");
}

const KILL_USERS: usize = 4;
const SOCKETS_PER_USER: usize = 3;

/// One client socket that follows its user's events across a gateway failure: on any close
/// it reconnects to the surviving gateway with `?after=<last id>`.
async fn follow(
    mut url: String,
    fallback: String,
    token: String,
    seen: Arc<Mutex<Vec<String>>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    ready: tokio::sync::mpsc::Sender<()>,
) -> usize {
    let mut reconnects = 0;
    let mut ready = Some(ready);
    loop {
        let last = seen.lock().unwrap().last().cloned();
        let mut ws = match try_connect(&url, &token, last.as_deref()).await {
            Ok(ws) => ws,
            Err(err) => {
                assert!(url != fallback, "the surviving gateway refused: {err}");
                url = fallback.clone();
                continue;
            }
        };
        loop {
            let msg = tokio::select! {
                msg = ws.next() => msg,
                _ = stop.wait_for(|s| *s) => return reconnects,
            };
            match msg {
                Some(Ok(Message::Text(text))) => {
                    let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                    match v["type"].as_str() {
                        Some("event") => seen
                            .lock()
                            .unwrap()
                            .push(v["id"].as_str().unwrap().to_owned()),
                        Some("status") => {
                            if let Some(ready) = ready.take() {
                                ready.send(()).await.unwrap();
                            }
                        }
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        assert!(
            url != fallback,
            "a socket on the surviving gateway was closed"
        );
        // With backoff and jitter a real client would wait a little; the test does too.
        tokio::time::sleep(Duration::from_millis(50)).await;
        url = fallback.clone();
        reconnects += 1;
    }
}

/// One gateway SIGKILLed while events are published: every socket on it reconnects to the
/// other with its last id, and every socket of every user ends up with each acknowledged event
/// of its user exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_loses_nothing() {
    let server = RedisServer::start();
    let a = Served::start(&server.url());
    let b = Served::start(&server.url());
    let users: Vec<String> = (0..KILL_USERS).map(|u| format!("lee{u}")).collect();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(KILL_USERS * SOCKETS_PER_USER);
    let mut sockets = Vec::new();
    for (u, user) in users.iter().enumerate() {
        let token = token(user);
        for i in 0..SOCKETS_PER_USER {
            let on_a = (u + i) % 2 == 0;
            let url = if on_a { a.ws_url() } else { b.ws_url() };
            let seen = Arc::new(Mutex::new(Vec::new()));
            let task = tokio::spawn(follow(
                url,
                b.ws_url(),
                token.clone(),
                Arc::clone(&seen),
                stop_rx.clone(),
                ready_tx.clone(),
            ));
            sockets.push((user.clone(), on_a, seen, task));
        }
    }
    for _ in 0..sockets.len() {
        ready_rx.recv().await.unwrap();
    }

    // Publishers through both gateways; the one on A moves to B when A is gone.
    let publishing = Arc::new(AtomicBool::new(true));
    let mut publishers = Vec::new();
    for (p, port) in [a.port, b.port].into_iter().enumerate() {
        let (users, publishing, b_port) = (users.clone(), Arc::clone(&publishing), b.port);
        publishers.push(tokio::task::spawn_blocking(move || {
            let (mut port, mut acked, mut n) = (port, Vec::new(), 0);
            while publishing.load(Ordering::Relaxed) {
                let user = &users[(n + p) % users.len()];
                match publish(port, user, &format!(r#"{{"user":"{user}","n":{n}}}"#)) {
                    Ok(id) => acked.push((user.clone(), id)),
                    // Unacknowledged: it may or may not be stored.
                    Err(_) => port = b_port,
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.signal("-KILL");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    publishing.store(false, Ordering::Relaxed);
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for publisher in publishers {
        for (user, id) in publisher.await.unwrap() {
            expected.entry(user).or_default().push(id);
        }
    }
    assert!(expected.values().map(Vec::len).sum::<usize>() > 100);

    let has_all = |user: &str, seen: &Mutex<Vec<String>>| {
        let seen = seen.lock().unwrap();
        expected[user].iter().all(|id| seen.contains(id))
    };
    let start = std::time::Instant::now();
    while !sockets.iter().all(|(user, _, seen, _)| has_all(user, seen)) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "acknowledged events missing after the failover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_tx.send(true).unwrap();
    for (user, on_a, seen, task) in sockets {
        let reconnects = task.await.unwrap();
        assert_eq!(
            reconnects,
            usize::from(on_a),
            "reconnects of a socket of {user}"
        );
        let seen = seen.lock().unwrap();
        let order: Vec<_> = seen.iter().map(|id| event_id(id)).collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "a socket of {user}: every event once, in order, across the failover"
        );
    }
    drop(a);
}

/// `?token=` never reaches the log, even at `trace`: not for accepted sockets, not for
/// refused handshakes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_tokens_are_never_logged() {
    let server = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("ssot-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ssot"))
        .args(["serve", "--listen", &listen, "--redis", &server.url()])
        .env_remove("REDIS_URL")
        .env("SSOT_JWT_SECRET", SECRET)
        .env("SSOT_SERVICE_KEY", SERVICE_KEY)
        .env("SSOT_LOG", "trace")
        .env("NO_COLOR", "1")
        .current_dir(&dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let served = Served { child, port };
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "not listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let valid = token("tess");
    let (head, rest) = valid.split_once('.').unwrap();
    let tampered = format!("{head}.{rest}x");
    let url = served.ws_url();
    // Accepted, then refused for a bad resume id (400), then for a bad signature (401).
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}?token={valid}"))
        .await
        .unwrap();
    assert_eq!(
        next_frame(&mut ws, Duration::from_secs(3)).await.unwrap()["type"],
        "status"
    );
    for query in [
        format!("token={valid}&after=nope"),
        format!("after=1-0&token={tampered}"),
    ] {
        let refused = tokio_tungstenite::connect_async(format!("{url}?{query}")).await;
        assert!(refused.is_err(), "{query} refused");
    }
    drop(ws);
    served.signal("-TERM");
    let mut served = served;
    tokio::task::spawn_blocking(move || served.child.wait().unwrap())
        .await
        .unwrap();

    let logged = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        logged.matches("websocket handshake refused").count(),
        2,
        "the log captured the handshakes:\n{logged}"
    );
    let (_, signature) = valid.rsplit_once('.').unwrap();
    for secret in [valid.as_str(), tampered.as_str(), signature] {
        assert!(
            !logged.contains(secret),
            "a token reached the log:\n{logged}"
        );
    }
}
