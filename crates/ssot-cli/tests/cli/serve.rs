//! `ssot token` and `ssot serve` as processes: SIGTERM, a gateway killed under its clients.

use std::time::Duration;

use futures_util::StreamExt;
use ssot_testkit::RedisServer;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::*;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, token: &str, after: Option<&str>) -> Ws {
    let url = match after {
        Some(a) => format!("{url}?after={a}"),
        None => url.to_owned(),
    };
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
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

async fn events_until(ws: &mut Ws, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    while ids.len() < count {
        let frame = next_frame(ws, Duration::from_secs(3))
            .await
            .expect("an event in time");
        if frame["type"] == "event" {
            ids.push(frame["id"].as_str().unwrap().to_owned());
        }
    }
    ids
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

/// One gateway killed: its clients reconnect to the other with their last id and lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_loses_nothing() {
    let server = RedisServer::start();
    let a = Served::start(&server.url());
    let b = Served::start(&server.url());
    let token = token("lee");
    let mut on_a = connect(&a.ws_url(), &token, None).await;
    assert_eq!(
        next_frame(&mut on_a, Duration::from_secs(3)).await.unwrap()["type"],
        "status"
    );
    let mut published = Vec::new();
    for n in 0..5 {
        published.push(publish(b.port, "lee", &n.to_string()).unwrap());
    }
    let mut got = events_until(&mut on_a, 5).await;
    let last = got.last().cloned().unwrap();
    a.signal("-KILL");
    // Published while the client has no socket.
    for n in 5..10 {
        published.push(publish(b.port, "lee", &n.to_string()).unwrap());
    }
    let mut on_b = connect(&b.ws_url(), &token, Some(&last)).await;
    for n in 10..15 {
        published.push(publish(b.port, "lee", &n.to_string()).unwrap());
    }
    got.extend(events_until(&mut on_b, 10).await);
    assert_eq!(
        got, published,
        "every event once, in order, across the failover"
    );
    drop(a);
}
