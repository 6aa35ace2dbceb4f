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
