//! Bad input: each case gets its own status or close code, and nobody else is affected.

use std::time::Duration;

use futures_util::SinkExt;
use redis_ssot::stores::tokens::{TokenConfig, Tokens};
use ssot_gateway::GatewayOptions;
use ssot_testkit::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::*;

fn b64(json: &str) -> String {
    // URL-safe base64 without padding, enough for test headers.
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = json.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_refusals() {
    let server = RedisServer::start();
    let manager = manager(&server.url()).await;
    let options = GatewayOptions {
        allowed_origins: Some(vec!["https://app.example".into()]),
        ..Default::default()
    };
    let gw = TestGateway::start_with(manager.clone(), options).await;
    let url = gw.ws_url();
    let future_exp = 4_000_000_000u64;

    // No token at all.
    let err = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap_err();
    assert_eq!(refused_status(&err), 401, "no token");

    let valid = token("frank", 60);
    let (head, rest) = valid.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let mut flipped = signature.to_owned();
    let last = flipped.pop().unwrap();
    // The last of 43 base64url characters carries 4 bits and 2 zero bits: swap between two
    // characters with zero low bits ('A', 'E'), or the token is malformed instead of
    // wrongly signed (1 run in 16 when the signature ended in 'A' and became 'B').
    flipped.push(if last == 'A' { 'E' } else { 'A' });
    let tampered = format!("{head}.{payload}.{flipped}");
    let alg_none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&format!(r#"{{"sub":"frank","exp":{future_exp}}}"#))
    );
    let tokens = Tokens::new(manager.clone(), TokenConfig::hs256(SECRET).unwrap())
        .await
        .unwrap();
    let revoked =
        token_with(serde_json::json!({"sub": "frank", "exp": future_exp, "jti": "bad-1"}));
    tokens.revoke("bad-1", future_exp).await.unwrap();
    let cases = [
        ("bad signature", tampered, "token_signature"),
        ("expired", token("frank", -120), "token_expired"),
        ("alg none", alg_none, "token_algorithm"),
        ("revoked", revoked, "token_revoked"),
        ("garbage", "not-a-jwt".to_owned(), "token_malformed"),
        (
            "hostile sub",
            token_with(serde_json::json!({"sub": "a:b*", "exp": future_exp})),
            "token_claims",
        ),
    ];
    for (what, bad, code) in cases {
        let err = connect(&url, &bad, None).await.unwrap_err();
        assert_eq!(refused_status(&err), 401, "{what}");
        assert_eq!(refused_code(&err), code, "{what}");
    }
    // Token in the subprotocol and in the query string work too.
    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("ssot.v1, bearer.{valid}").parse().unwrap(),
    );
    let (_ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "ssot.v1");
    let (_ws, _) = tokio_tungstenite::connect_async(format!("{url}?token={valid}"))
        .await
        .unwrap();

    // Wrong origin.
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {valid}").parse().unwrap());
    request
        .headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert_eq!(refused_status(&err), 403, "origin");
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Bearer {valid}").parse().unwrap());
    request
        .headers_mut()
        .insert("Origin", "https://app.example".parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(request).await.is_ok(),
        "allowed origin"
    );

    // A resume id that is not an event id.
    for after in ["ssot:{u:other}:events", "1-2-3", "%24"] {
        let err = connect(&url, &valid, Some(after)).await.unwrap_err();
        assert_eq!(refused_status(&err), 400, "after={after}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_their_own_answer_and_spare_others() {
    let server = RedisServer::start();
    let options = GatewayOptions {
        max_message_bytes: Some(1024),
        inbound_rate: Some(5),
        inbound_burst: Some(5),
        abuse_threshold: Some(10),
        ..Default::default()
    };
    let gw = TestGateway::start_with(manager(&server.url()).await, options).await;
    let url = gw.ws_url();
    // A bystander of another user, who must see none of this.
    let (mut bystander, mut seen) = connect_ready(&url, &token("bystander", 60)).await;

    let frame_cases = [
        ("{not json", "invalid_json"),
        (r#"{"type":"dance"}"#, "unknown_type"),
        (r#"{"no":"type"}"#, "invalid_frame"),
        (
            r#"{"type":"resume","after":"ssot:{u:bystander}:events"}"#,
            "invalid_event_id",
        ),
    ];
    for (frame, code) in frame_cases {
        let mut ws = connect(&url, &token("grace", 60), None).await.unwrap();
        send_text(&mut ws, frame).await;
        let mut got = Received::default();
        assert!(
            read_until(&mut ws, &mut got, Duration::from_secs(2), |r| !r
                .errors
                .is_empty())
            .await,
            "{frame}"
        );
        assert_eq!(got.errors, [code], "{frame}");
        assert_eq!(got.close, None, "{frame}: the socket stays open");
    }

    let close_cases: [(&str, Message, u16); 2] = [
        ("oversize", Message::Text("x".repeat(4096).into()), 1009),
        ("binary", Message::Binary(vec![1, 2, 3].into()), 1003),
    ];
    for (what, message, code) in close_cases {
        let mut ws = connect(&url, &token("heidi", 60), None).await.unwrap();
        let _ = ws.send(message).await;
        let mut got = Received::default();
        assert!(
            read_until(&mut ws, &mut got, Duration::from_secs(2), |r| r
                .close
                .is_some())
            .await,
            "{what}"
        );
        assert_eq!(got.close, Some(code), "{what}");
    }

    // Flood: rate-limited answers first, then 1008.
    let mut ws = connect(&url, &token("ivan", 60), None).await.unwrap();
    for _ in 0..60 {
        if ws
            .send(Message::Text(r#"{"type":"ping"}"#.into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut got = Received::default();
    assert!(
        read_until(&mut ws, &mut got, Duration::from_secs(3), |r| r
            .close
            .is_some())
        .await
    );
    assert!(got.errors.iter().any(|c| c == "rate_limited"), "{got:?}");
    assert_eq!(got.close, Some(1008));

    // The bystander still works and saw nothing.
    let mut publisher = Publisher::new(gw.addr);
    bystander_is_served(&mut publisher, &mut bystander, &mut seen).await;
}

/// Publishes one event to the bystander: it arrives, alone, on its still open socket.
async fn bystander_is_served(publisher: &mut Publisher, ws: &mut Ws, seen: &mut Received) {
    let before = seen.events.len();
    let id = publisher
        .publish("bystander", "still-here", serde_json::json!({}))
        .await
        .unwrap();
    assert!(
        read_until(ws, seen, Duration::from_secs(2), |r| r.events.len()
            > before)
        .await
    );
    assert_eq!(seen.events.len(), before + 1);
    assert_eq!(seen.events[before].0, id);
    assert!(seen.errors.is_empty() && seen.close.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_api_errors() {
    let mut server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let mut http = Publisher::new(gw.addr);
    let ok = r#"{"event":"e","data":{"a":1}}"#;
    let cases: Vec<(&str, Option<&str>, String, u16, &str)> = vec![
        (
            "/v1/users/alice/events",
            None,
            ok.into(),
            401,
            "service_key",
        ),
        (
            "/v1/users/alice/events",
            Some("wrong-key-0123456789"),
            ok.into(),
            401,
            "service_key",
        ),
        (
            "/v1/users/a:b/events",
            Some(SERVICE_KEY),
            ok.into(),
            400,
            "invalid_user_id",
        ),
        (
            "/v1/users/%2A/events",
            Some(SERVICE_KEY),
            ok.into(),
            400,
            "invalid_user_id",
        ),
        (
            "/v1/users/alice/events",
            Some(SERVICE_KEY),
            "{".into(),
            400,
            "invalid_body",
        ),
        (
            "/v1/users/alice/events",
            Some(SERVICE_KEY),
            r#"{"event":"e"}"#.into(),
            400,
            "invalid_body",
        ),
        (
            "/v1/users/alice/events",
            Some(SERVICE_KEY),
            r#"{"event":"a b","data":1}"#.into(),
            400,
            "invalid_input",
        ),
        (
            "/v1/users/alice/events",
            Some(SERVICE_KEY),
            format!(r#"{{"event":"e","data":"{}"}}"#, "x".repeat(70_000)),
            413,
            "payload_too_large",
        ),
    ];
    for (path, key, body, status, code) in cases {
        let answer = http.request("POST", path, key, &body).await.unwrap();
        assert_eq!(answer.status, status, "{path} {body:.40}: {}", answer.body);
        let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(v["error"]["code"], code, "{path}");
    }
    server.kill();
    let mut saw_503 = false;
    for _ in 0..20 {
        let answer = http
            .request("POST", "/v1/users/alice/events", Some(SERVICE_KEY), ok)
            .await
            .unwrap();
        assert_ne!(answer.status, 200);
        if answer.status == 503 {
            assert!(
                answer.headers.contains_key("retry-after"),
                "{:?}",
                answer.headers
            );
            saw_503 = true;
            break;
        }
    }
    assert!(
        saw_503,
        "publish answers 503 with Retry-After while Redis is down"
    );
}

/// permessage-deflate is never negotiated: the offer is ignored and the socket works
/// uncompressed (see docs/protocol.md for why).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permessage_deflate_is_not_negotiated() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let mut request = gw.ws_url().into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "Authorization",
        format!("Bearer {}", token("zed", 60)).parse().unwrap(),
    );
    headers.insert(
        "Sec-WebSocket-Extensions",
        "permessage-deflate; client_max_window_bits"
            .parse()
            .unwrap(),
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 101);
    assert!(
        response.headers().get("sec-websocket-extensions").is_none(),
        "no extension accepted: {:?}",
        response.headers()
    );
    first_status(
        &mut ws,
        Duration::from_secs(2),
        "the socket works uncompressed",
    )
    .await;
}

/// Reads what the server sends until it closes the connection; when that happened.
async fn read_to_close(mut conn: TcpStream, within: Duration) -> (String, std::time::Instant) {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 1024];
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the connection was not closed within {within:?}"
    );
    (
        String::from_utf8_lossy(&answer).into_owned(),
        std::time::Instant::now(),
    )
}

/// Slowloris: partial headers trickled in are cut off at the header timeout, a publish body
/// trickled in gets 408 at the body timeout, and other clients notice nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let server = RedisServer::start();
    let timeout = Duration::from_millis(400);
    let options = GatewayOptions {
        header_timeout_ms: Some(timeout.as_millis() as u64),
        body_timeout_ms: Some(timeout.as_millis() as u64),
        ..Default::default()
    };
    let gw = TestGateway::start_with(manager(&server.url()).await, options).await;
    let (mut bystander, mut seen) = connect_ready(&gw.ws_url(), &token("bystander", 60)).await;

    let started = std::time::Instant::now();
    let mut slow = Vec::new();
    for _ in 0..10 {
        let mut conn = TcpStream::connect(gw.addr).await.unwrap();
        conn.write_all(b"GET /v1/ws HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(tokio::spawn(async move {
            // One more header byte every 100 ms: never idle, never complete.
            let (mut rd, mut wr) = conn.into_split();
            let trickle = tokio::spawn(async move {
                for b in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    .iter()
                    .cycle()
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if wr.write_all(&[*b]).await.is_err() {
                        return;
                    }
                }
            });
            let mut buf = [0u8; 256];
            let read = tokio::time::timeout(Duration::from_secs(3), async {
                while let Ok(n) = rd.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await;
            trickle.abort();
            assert!(read.is_ok(), "a slowloris connection was never closed");
            std::time::Instant::now()
        }));
    }
    // Meanwhile the bystander is served, and new sockets connect.
    let mut publisher = Publisher::new(gw.addr);
    bystander_is_served(&mut publisher, &mut bystander, &mut seen).await;
    connect_ready(&gw.ws_url(), &token("newcomer", 60)).await;
    for conn in slow {
        let closed = conn.await.unwrap().duration_since(started);
        assert!(
            closed >= timeout && closed < timeout + Duration::from_millis(800),
            "cut off after {closed:?}, the header timeout is {timeout:?}"
        );
    }

    // A publish whose body trickles in: 408 at the body timeout, then the connection closes.
    let mut conn = TcpStream::connect(gw.addr).await.unwrap();
    let head = format!(
        "POST /v1/users/bystander/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SERVICE_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"event\":"
    );
    let sent = std::time::Instant::now();
    conn.write_all(head.as_bytes()).await.unwrap();
    let (answer, closed) = read_to_close(conn, Duration::from_secs(3)).await;
    let took = closed.duration_since(sent);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(800),
        "408 after {took:?}, the body timeout is {timeout:?}"
    );
    // The bystander's socket is still open and served (through a new publish connection:
    // the header timeout also closes a kept-alive connection left idle that long).
    let mut publisher = Publisher::new(gw.addr);
    bystander_is_served(&mut publisher, &mut bystander, &mut seen).await;
}

/// The default limit, 64 KiB: a message of exactly that size is read (and answered), one byte
/// more closes with 1009. Pins the detection of tungstenite's capacity error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_message_limit_is_64_kib() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let limit = ssot_gateway::config::DEFAULT_MAX_MESSAGE_BYTES;
    assert_eq!(limit, 64 * 1024);
    let (mut ws, mut got) = connect_ready(&gw.ws_url(), &token("kate", 60)).await;
    send_text(&mut ws, &"x".repeat(limit)).await;
    assert!(
        read_until(&mut ws, &mut got, Duration::from_secs(2), |r| !r
            .errors
            .is_empty())
        .await
    );
    assert_eq!(got.errors, ["invalid_json"], "read, parsed and answered");
    let _ = ws.send(Message::Text("x".repeat(limit + 1).into())).await;
    assert!(
        read_until(&mut ws, &mut got, Duration::from_secs(2), |r| r
            .close
            .is_some())
        .await
    );
    assert_eq!(got.close, Some(1009), "64 KiB + 1 closes with 1009");
}
