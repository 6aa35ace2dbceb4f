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
