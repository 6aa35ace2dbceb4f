//! A revocation cannot be missed (issue 12 finding 4): after the subscriber connection comes
//! back, every open socket checks its token against Redis again.

use std::time::Duration;

use ssot_testkit::RedisServer;

use crate::support::{Received, TestGateway, connect_ready, get, manager, read_until, token_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_announced_while_the_subscriber_was_down_still_closes_the_socket() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let jti = "missed-revocation-1";
    let revoked = token_with(serde_json::json!({"sub": "mallory", "exp": exp, "jti": jti}));
    let kept = token_with(serde_json::json!({"sub": "mallory", "exp": exp, "jti": "kept-1"}));
    let (mut ws, mut got) = connect_ready(&gw.ws_url(), &revoked).await;
    let (mut other, _) = connect_ready(&gw.ws_url(), &kept).await;

    // What `revoke` leaves in Redis when its announcement never reached this gateway.
    server.cli(&["SET", &format!("ssot:revoked:{jti}"), "1", "EX", "600"]);
    read_until(&mut ws, &mut got, Duration::from_millis(300), |r| {
        r.close.is_some()
    })
    .await;
    assert_eq!(got.close, None, "nothing was announced yet");

    // The subscriber connection drops and comes back: announcements may have been missed.
    server.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert!(
        read_until(&mut ws, &mut got, Duration::from_secs(5), |r| r
            .close
            .is_some())
        .await,
        "the revoked socket was not closed after the subscriber came back"
    );
    assert_eq!(got.close, Some(4403));
    let mut more = Received::default();
    read_until(&mut other, &mut more, Duration::from_millis(500), |r| {
        r.close.is_some()
    })
    .await;
    assert_eq!(more.close, None, "a token that was not revoked stays");

    let ready: serde_json::Value =
        serde_json::from_str(&get(gw.addr, "/ready").await.body).unwrap();
    assert_eq!(
        ready["subscriber"], "up",
        "/ready reports the subscriber: {ready}"
    );
}
