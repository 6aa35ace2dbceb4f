//! Bad input: each case gets its own status or close code, and nobody else is affected.

use std::time::Duration;

use futures_util::SinkExt;
use redis_ssot::stores::tokens::{TokenConfig, Tokens};
use ssot_gateway::GatewayOptions;
use ssot_testkit::RedisServer;
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
    flipped.push(if last == 'A' { 'B' } else { 'A' });
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
        ("bad signature", tampered),
        ("expired", token("frank", -120)),
        ("alg none", alg_none),
        ("revoked", revoked),
        ("garbage", "not-a-jwt".to_owned()),
        (
            "hostile sub",
            token_with(serde_json::json!({"sub": "a:b*", "exp": future_exp})),
        ),
    ];
    for (what, bad) in cases {
        let err = connect(&url, &bad, None).await.unwrap_err();
        assert_eq!(refused_status(&err), 401, "{what}");
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
    let id = publisher
        .publish("bystander", "still-here", serde_json::json!({}))
        .await
        .unwrap();
    assert!(
        read_until(&mut bystander, &mut seen, Duration::from_secs(2), |r| !r
            .events
            .is_empty())
        .await
    );
    assert_eq!(seen.events.len(), 1);
    assert_eq!(seen.events[0].0, id);
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
