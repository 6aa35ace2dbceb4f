//! A socket's life around delivery: token expiry and revocation close it, shutdown drains
//! with 1012, a client close is answered, and the health/ready/metrics/status endpoints.

use std::time::Duration;

use redis_ssot::stores::tokens::{TokenConfig, Tokens};
use ssot_testkit::RedisServer;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiry_and_revocation_close_the_socket() {
    let server = RedisServer::start();
    let manager = manager(&server.url()).await;
    let gw = TestGateway::start(manager.clone()).await;

    // Closed with 4401 no earlier than `exp` and within a second after it.
    let unix_now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let exp = unix_now().floor() as u64 + 2;
    let expiring = token_with(serde_json::json!({"sub": "erin", "exp": exp, "jti": "expiring-1"}));
    let mut ws = connect(&gw.ws_url(), &expiring, None).await.unwrap();
    let mut got = Received::default();
    assert!(
        read_until(&mut ws, &mut got, Duration::from_secs(4), |r| r
            .close
            .is_some())
        .await
    );
    let closed_at = unix_now();
    assert_eq!(got.close, Some(4401), "expired token closes with 4401");
    let after_exp = closed_at - exp as f64;
    assert!(
        (-0.05..1.0).contains(&after_exp),
        "closed {after_exp:.3} s after exp; must be within [0, 1)"
    );

    let jti = "revoke-me-1";
    let revocable =
        token_with(serde_json::json!({"sub": "erin", "exp": 4_000_000_000u64, "jti": jti}));
    let (mut ws, mut got) = connect_ready(&gw.ws_url(), &revocable).await;
    // Revoke from another process's point of view: a separate manager and Tokens.
    let other = crate::support::manager(&server.url()).await;
    let tokens = Tokens::new(other, TokenConfig::hs256(SECRET).unwrap())
        .await
        .unwrap();
    let revoked_at = std::time::Instant::now();
    tokens.revoke(jti, 4_000_000_000).await.unwrap();
    assert!(
        read_until(&mut ws, &mut got, Duration::from_secs(2), |r| r
            .close
            .is_some())
        .await
    );
    assert_eq!(got.close, Some(4403));
    assert!(
        revoked_at.elapsed() < Duration::from_secs(1),
        "closed within a second"
    );
    // And it cannot come back.
    let err = connect(&gw.ws_url(), &revocable, None).await.unwrap_err();
    assert_eq!(refused_status(&err), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_with_1012_and_drains() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let mut sockets = Vec::new();
    for i in 0..5 {
        sockets.push(
            connect(&gw.ws_url(), &token(&format!("u{i}"), 60), None)
                .await
                .unwrap(),
        );
    }
    for ws in &mut sockets {
        let mut got = Received::default();
        assert!(
            read_until(ws, &mut got, Duration::from_secs(2), |r| !r
                .statuses
                .is_empty())
            .await
        );
    }
    let addr = gw.addr;
    gw.shutdown().await;
    for ws in &mut sockets {
        let mut got = Received::default();
        assert!(read_until(ws, &mut got, Duration::from_secs(2), |r| r.close.is_some()).await);
        assert_eq!(got.close, Some(1012));
    }
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_metrics_and_status_page() {
    ssot_testkit::own_process!(health_ready_metrics_and_status_page);
    let mut server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    assert_eq!(get(gw.addr, "/health").await.status, 200);
    assert_eq!(get(gw.addr, "/ready").await.status, 200);
    let page = get(gw.addr, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("SsotClient"));
    assert!(
        get(gw.addr, "/client.js")
            .await
            .body
            .contains("class SsotClient")
    );
    // Traffic: live deliveries, a replay, a clean close and an abrupt drop.
    let mut publisher = Publisher::new(gw.addr);
    let (mut live, mut got) = connect_ready(&gw.ws_url(), &token("m", 60)).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            publisher
                .publish("m", "e", serde_json::json!(n))
                .await
                .unwrap(),
        );
    }
    assert!(read_events(&mut live, &mut got, 3, Duration::from_secs(2)).await);
    let mut resumed = connect(&gw.ws_url(), &token("m", 60), Some(&ids[0]))
        .await
        .unwrap();
    let mut again = Received::default();
    assert!(read_events(&mut resumed, &mut again, 2, Duration::from_secs(2)).await);
    live.close(None).await.unwrap();
    assert!(
        read_until(&mut live, &mut got, Duration::from_secs(2), |r| r
            .close
            .is_some())
        .await
    );
    drop(resumed);

    let value = |body: &str, series: &str| -> Option<f64> {
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    };
    let mut metrics = get(gw.addr, "/metrics").await;
    for _ in 0..40 {
        if value(&metrics.body, r#"ssot_gateway_closes_total{code="1006"}"#).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        metrics = get(gw.addr, "/metrics").await;
    }
    assert_eq!(metrics.status, 200);
    let body = &metrics.body;
    let expect = [
        ("ssot_gateway_connections", 0.0),
        ("ssot_gateway_events_published_total", 3.0),
        // 3 live on the first socket, 2 replayed on the second.
        ("ssot_gateway_events_delivered_total", 5.0),
        ("ssot_gateway_events_replayed_total", 2.0),
        // The client's close (no code) and the drop without a closing handshake.
        (r#"ssot_gateway_closes_total{code="1005"}"#, 1.0),
        (r#"ssot_gateway_closes_total{code="1006"}"#, 1.0),
        ("ssot_gateway_publish_seconds_count", 3.0),
        ("ssot_breaker_state", 0.0),
    ];
    for (series, want) in expect {
        assert_eq!(
            value(body, series),
            Some(want),
            "{series} in /metrics:\n{body}"
        );
    }
    let publish_secs = value(body, "ssot_gateway_publish_seconds_sum").unwrap();
    assert!(
        publish_secs > 0.0 && publish_secs < 3.0,
        "publish latency sum {publish_secs} s for 3 local publishes"
    );
    assert!(!body.contains(r#"code="1011""#), "no 1011 closes");
    let status: serde_json::Value =
        serde_json::from_str(&get(gw.addr, "/v1/status").await.body).unwrap();
    assert_eq!(status["redis"], "ok");
    server.kill();
    let mut ready = 200;
    for _ in 0..40 {
        ready = get(gw.addr, "/ready").await.status;
        if ready == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 503, "/ready turns 503 when Redis is gone");
    assert_eq!(
        get(gw.addr, "/health").await.status,
        200,
        "/health is process liveness only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_is_answered() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let (mut ws, mut got) = connect_ready(&gw.ws_url(), &token("quinn", 60)).await;
    ws.close(None).await.unwrap();
    assert!(
        read_until(&mut ws, &mut got, Duration::from_secs(2), |r| r
            .close
            .is_some())
        .await
    );
    assert_eq!(
        got.close,
        Some(1005),
        "the server answers the close handshake"
    );
}
