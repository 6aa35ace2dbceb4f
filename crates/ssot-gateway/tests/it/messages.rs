//! Chat messages in: acknowledged once stored as an agent job, idempotent by message id.

use std::time::Duration;

use futures_util::StreamExt;
use ssot_testkit::RedisServer;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

/// Reads frames until one of `kind` arrives; returns it.
async fn next_of(ws: &mut Ws, kind: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} frame"))
            .unwrap()
            .unwrap();
        if let Message::Text(text) = msg {
            let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
            if v["type"] == kind {
                return v;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_become_jobs_once() {
    let mut server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let mut ws = connect(&gw.ws_url(), &token("judy", 60), None)
        .await
        .unwrap();
    next_of(&mut ws, "status").await;

    send_text(&mut ws, r#"{"type":"message","id":"m-1","text":"hello"}"#).await;
    let ack = next_of(&mut ws, "ack").await;
    assert_eq!(ack["ref"], "m-1");
    let job = ack["job"].as_str().unwrap().to_owned();
    // The same id again (also from a new socket): the same job, nothing new enqueued.
    send_text(&mut ws, r#"{"type":"message","id":"m-1","text":"hello"}"#).await;
    assert_eq!(next_of(&mut ws, "ack").await["job"], job.as_str());
    let mut again = connect(&gw.ws_url(), &token("judy", 60), None)
        .await
        .unwrap();
    send_text(
        &mut again,
        r#"{"type":"message","id":"m-1","text":"hello"}"#,
    )
    .await;
    assert_eq!(next_of(&mut again, "ack").await["job"], job.as_str());
    assert_eq!(server.cli(&["XLEN", "ssot:{jobs:agent}:stream"]), "1");

    send_text(
        &mut ws,
        &format!(
            r#"{{"type":"message","id":"m-2","text":"{}"}}"#,
            "x".repeat(9000)
        ),
    )
    .await;
    assert_eq!(next_of(&mut ws, "error").await["code"], "message_too_long");
    send_text(&mut ws, r#"{"type":"message","id":"bad id","text":"hi"}"#).await;
    assert_eq!(
        next_of(&mut ws, "error").await["code"],
        "invalid_message_id"
    );

    server.kill();
    let mut refused = None;
    for n in 0..20 {
        send_text(
            &mut ws,
            &format!(r#"{{"type":"message","id":"down-{n}","text":"hi"}}"#),
        )
        .await;
        let frame = loop {
            let f = next_of(&mut ws, "error").await;
            if f["code"] != "rate_limited" {
                break f;
            }
        };
        if frame["code"] == "redis_unavailable" {
            refused = Some(frame);
            break;
        }
    }
    let refused = refused.expect("an error frame with retry-after while Redis is down");
    assert!(refused["retry_after_ms"].as_u64().is_some(), "{refused}");
}

/// Chat messages above the user's message rate get the documented `rate_limited` error frame
/// with `retry_after_ms`; nothing is enqueued for them and the socket stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_messages_over_the_rate_get_rate_limited_with_retry_after() {
    let server = RedisServer::start();
    let options = ssot_gateway::GatewayOptions {
        message_rate: Some(1),
        message_burst: Some(2),
        ..Default::default()
    };
    let gw = TestGateway::start_with(manager(&server.url()).await, options).await;
    let mut ws = connect(&gw.ws_url(), &token("mallory", 60), None)
        .await
        .unwrap();
    next_of(&mut ws, "status").await;
    let mut acked = 0;
    let limited = loop {
        assert!(acked < 10, "no rate limit after {acked} messages");
        let n = acked + 1;
        send_text(
            &mut ws,
            &format!(r#"{{"type":"message","id":"r-{n}","text":"hi"}}"#),
        )
        .await;
        let frame = next_any(&mut ws).await;
        match frame["type"].as_str() {
            Some("ack") => acked += 1,
            Some("error") => break frame,
            other => panic!("unexpected {other:?}: {frame}"),
        }
    };
    assert_eq!(acked, 2, "exactly the burst of 2 is admitted");
    assert_eq!(limited["code"], "rate_limited", "{limited}");
    // One message a minute: the wait is the message limit's, not the inbound frame limit's.
    let retry = limited["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!((1_000..=60_000).contains(&retry), "retry_after_ms {retry}");
    assert_eq!(
        server.cli(&["XLEN", "ssot:{jobs:agent}:stream"]),
        acked.to_string(),
        "the limited message was not enqueued"
    );
    send_text(&mut ws, r#"{"type":"ping"}"#).await;
    assert_eq!(
        next_any(&mut ws).await["type"],
        "pong",
        "the socket stays open"
    );
}

/// The next text frame, whatever its type.
async fn next_any(ws: &mut Ws) -> serde_json::Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(3), ws.next())
            .await
            .expect("a frame in time")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = msg {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_agent_queue_answers_queue_full_and_stores_nothing_more() {
    let server = RedisServer::start();
    let options = ssot_gateway::GatewayOptions {
        agent_queue_max_len: Some(2),
        ..Default::default()
    };
    let gw = TestGateway::start_with(manager(&server.url()).await, options).await;
    let mut ws = connect(&gw.ws_url(), &token("kim", 60), None)
        .await
        .unwrap();
    next_of(&mut ws, "status").await;
    for n in 0..2 {
        send_text(
            &mut ws,
            &format!(r#"{{"type":"message","id":"q-{n}","text":"hi"}}"#),
        )
        .await;
        assert_eq!(next_of(&mut ws, "ack").await["ref"], format!("q-{n}"));
    }
    send_text(&mut ws, r#"{"type":"message","id":"q-2","text":"hi"}"#).await;
    let refused = next_of(&mut ws, "error").await;
    assert_eq!(refused["code"], "queue_full", "{refused}");
    assert!(refused["retry_after_ms"].as_u64().unwrap() > 0, "{refused}");
    // A retry of an accepted message still gets its job, full queue or not.
    send_text(&mut ws, r#"{"type":"message","id":"q-0","text":"hi"}"#).await;
    assert_eq!(next_of(&mut ws, "ack").await["ref"], "q-0");
    assert_eq!(server.cli(&["XLEN", "ssot:{jobs:agent}:stream"]), "2");
}
