//! What one hostile (or broken) client can try, and the documented answer it gets
//! (issue 12): out-of-range ids, ping floods, odd close codes, foreign origins.

use std::time::Duration;

use ssot_testkit::RedisServer;

use crate::support::{
    Received, TestGateway, connect, connect_ready, manager, read_until, refused_code,
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
