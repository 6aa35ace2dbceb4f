//! What one hostile (or broken) client can try, and the documented answer it gets
//! (issue 12): out-of-range ids, ping floods, odd close codes, foreign origins.

use std::time::Duration;

use futures_util::SinkExt;
use ssot_testkit::RedisServer;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::support::{
    Received, TestGateway, Ws, connect, connect_ready, get, manager, read_until, refused_code,
    refused_status, send_text, token,
};

/// The largest id there is: no event can follow it, so Redis refuses it as a start.
const LAST_ID: &str = "18446744073709551615-18446744073709551615";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_event_ids_are_bad_requests() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;

    let err = connect(&gw.ws_url(), &token("olga", 60), Some(LAST_ID))
        .await
        .expect_err("the handshake is refused");
    assert_eq!(refused_status(&err), 400);
    assert_eq!(refused_code(&err), "invalid_event_id");

    let (mut ws, mut got) = connect_ready(&gw.ws_url(), &token("olga", 60)).await;
    send_text(
        &mut ws,
        &format!(r#"{{"type":"resume","after":"{LAST_ID}"}}"#),
    )
    .await;
    assert!(
        read_until(&mut ws, &mut got, Duration::from_secs(2), |r| !r
            .errors
            .is_empty())
        .await
    );
    assert_eq!(got.errors, ["invalid_event_id"]);
    // And the socket is not left retrying degraded.
    let mut more = Received::default();
    read_until(&mut ws, &mut more, Duration::from_millis(1500), |_| false).await;
    assert!(more.statuses.is_empty(), "no status change: {more:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_gets_16_sockets_and_others_still_connect() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let mut mine = Vec::new();
    for _ in 0..16 {
        mine.push(connect_ready(&gw.ws_url(), &token("hog", 600)).await.0);
    }
    let err = connect(&gw.ws_url(), &token("hog", 600), None)
        .await
        .expect_err("the 17th socket of one user is refused");
    assert_eq!(refused_status(&err), 429);
    assert_eq!(refused_code(&err), "too_many_user_sockets");
    // Another user is not affected.
    let (_other, got) = connect_ready(&gw.ws_url(), &token("polite", 600)).await;
    assert_eq!(got.statuses, ["ok"]);
    // A closed socket frees its slot.
    let mut first = mine.remove(0);
    first.close(None).await.unwrap();
    let mut closed = Received::default();
    read_until(&mut first, &mut closed, Duration::from_secs(2), |r| {
        r.close.is_some()
    })
    .await;
    drop(first);
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(ws) = connect(&gw.ws_url(), &token("hog", 600), None).await {
            reopened = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened.is_some(), "a freed slot can be used again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_counts_in_the_inbound_rate_limit() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let (mut ws, mut got) = connect_ready(&gw.ws_url(), &token("pinger", 60)).await;
    // Burst 40, then 20 refused in a row: closed long before 500.
    for _ in 0..500 {
        if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
            break;
        }
    }
    assert!(
        read_until(&mut ws, &mut got, Duration::from_secs(5), |r| r
            .close
            .is_some())
        .await,
        "a ping flood is not left alone"
    );
    assert_eq!(got.close, Some(1008));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_chosen_close_codes_are_one_metric_label() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    for code in [3333u16, 4321] {
        let (mut ws, mut got) = connect_ready(&gw.ws_url(), &token("closer", 60)).await;
        ws.close(Some(CloseFrame {
            code: code.into(),
            reason: "bye".into(),
        }))
        .await
        .unwrap();
        read_until(&mut ws, &mut got, Duration::from_secs(2), |r| {
            r.close.is_some()
        })
        .await;
    }
    let mut body = String::new();
    for _ in 0..50 {
        body = get(gw.addr, "/metrics").await.body;
        if body.contains(r#"ssot_gateway_closes_total{code="other"}"#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !body.contains(r#"code="3333""#),
        "a client's code became a label"
    );
    assert!(
        !body.contains(r#"code="4321""#),
        "a client's code became a label"
    );
    assert!(body.contains(r#"ssot_gateway_closes_total{code="other"}"#));
}

/// An `Origin` header with the token in `Authorization`, and an optional forged `Host`.
async fn connect_from(
    url: &str,
    origin: &str,
    host: Option<&str>,
) -> Result<Ws, tungstenite::Error> {
    let mut request = url.into_client_request()?;
    let headers = request.headers_mut();
    headers.insert(
        "Authorization",
        format!("Bearer {}", token("web", 60)).parse().unwrap(),
    );
    headers.insert("Origin", origin.parse().unwrap());
    if let Some(host) = host {
        headers.insert("Host", host.parse().unwrap());
    }
    Ok(tokio_tungstenite::connect_async(request).await?.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_compare_scheme_host_and_port() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let url = gw.ws_url();
    let own = format!("http://{}", gw.addr);
    assert!(
        connect_from(&url, &own, None).await.is_ok(),
        "the gateway's own origin"
    );
    // A forged Host does not make a foreign origin the gateway's own.
    let err = connect_from(&url, "http://evil.example", Some("evil.example"))
        .await
        .unwrap_err();
    assert_eq!(refused_code(&err), "origin_not_allowed");
    let other_scheme = format!("https://{}", gw.addr);
    let err = connect_from(&url, &other_scheme, None).await.unwrap_err();
    assert_eq!(
        refused_code(&err),
        "origin_not_allowed",
        "the scheme counts"
    );
    let other_port = format!("http://127.0.0.1:{}", gw.addr.port() ^ 1);
    let err = connect_from(&url, &other_port, None).await.unwrap_err();
    assert_eq!(refused_code(&err), "origin_not_allowed", "the port counts");

    let listed = ssot_gateway::GatewayOptions {
        allowed_origins: Some(vec!["https://app.example".into()]),
        ..Default::default()
    };
    let gw = TestGateway::start_with(manager(&server.url()).await, listed).await;
    let url = gw.ws_url();
    assert!(
        connect_from(&url, "https://APP.example:443", None)
            .await
            .is_ok(),
        "default port, any case"
    );
    for refused in [
        "http://app.example",
        "https://app.example:8443",
        "https://app.example.evil",
    ] {
        let err = connect_from(&url, refused, None).await.unwrap_err();
        assert_eq!(refused_code(&err), "origin_not_allowed", "{refused}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_peer_is_closed_after_the_idle_timeout() {
    // It counts a close in the process-wide /metrics: alone in its process under cargo test.
    ssot_testkit::own_process!(a_vanished_peer_is_closed_after_the_idle_timeout);
    let server = RedisServer::start();
    let options = ssot_gateway::GatewayOptions {
        ping_interval_ms: Some(200),
        idle_timeout_ms: Some(700),
        ..Default::default()
    };
    let gw = TestGateway::start_with(manager(&server.url()).await, options).await;
    // A live client answers the server's pings (tungstenite does while it reads).
    let (mut alive, mut alive_got) = connect_ready(&gw.ws_url(), &token("here", 60)).await;
    let (mut gone, _) = connect_ready(&gw.ws_url(), &token("gone", 60)).await;
    read_until(
        &mut alive,
        &mut alive_got,
        Duration::from_millis(1500),
        |_| false,
    )
    .await;
    assert_eq!(alive_got.close, None, "a client that answers pings stays");
    // `gone` was not read for 1.5 s: no pong, so the server closed it and freed its slot.
    // (Its close frame may be lost: reading the queued pings makes the client answer them
    // on a closed connection.)
    let _ = &mut gone;
    let mut open = serde_json::Value::Null;
    for _ in 0..40 {
        let status = get(gw.addr, "/v1/status").await;
        open =
            serde_json::from_str::<serde_json::Value>(&status.body).unwrap()["connections"].clone();
        if open == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(open, 1, "the vanished peer's slot is free");
    let metrics = get(gw.addr, "/metrics").await.body;
    assert!(
        metrics.contains(r#"ssot_gateway_closes_total{code="4002"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_never_expires_is_refused() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let forever = crate::support::token_with(serde_json::json!({
        "sub": "immortal", "exp": u64::MAX, "jti": "forever-1"
    }));
    let err = connect(&gw.ws_url(), &forever, None)
        .await
        .expect_err("exp = u64::MAX is refused");
    assert_eq!(refused_status(&err), 401);
    assert_eq!(refused_code(&err), "token_lifetime");
}
