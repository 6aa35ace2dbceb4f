//! Presence across gateways, as processes: two `ssot serve` sharing one Redis count one
//! user's sockets together; a SIGKILLed gateway's sockets drop out within `presence-ttl-ms`.

use std::time::{Duration, Instant};

use ssot_testkit::RedisServer;

use crate::pipeline::open;
use crate::support::*;
use crate::worker::config_file;

/// Reports every 200 ms, living 1 s: the documented bound of this test's drop-out.
const TTL: Duration = Duration::from_millis(1000);

fn presence(port: u16, user: &str) -> serde_json::Value {
    let (status, body) = service_request(port, "GET", &format!("/v1/users/{user}/presence"), "");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `port` until `user`'s presence is `want`; the time it took.
async fn until_presence(
    port: u16,
    user: &str,
    want: serde_json::Value,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let got = presence(port, user);
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{user}: {got} after {within:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// 2 sockets on gateway A and 1 on gateway B: both gateways answer 3 sockets on 2 gateways.
/// A is SIGKILLed: within the TTL B answers 1 socket on 1 gateway. B's socket closes: 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_counts_every_gateway_and_drops_a_killed_one_within_the_ttl() {
    let server = RedisServer::start();
    let config = config_file(&format!(
        "[gateway]\npresence-interval-ms = 200\npresence-ttl-ms = {}\n",
        TTL.as_millis()
    ));
    let path = config.path().to_str().unwrap().to_owned();
    let a = Served::start_with(&server.url(), &["--config", &path]);
    let b = Served::start_with(&server.url(), &["--config", &path]);
    let user = "presence-user";
    assert_eq!(
        presence(b.port, user),
        serde_json::json!({"sockets": 0, "gateways": 0})
    );
    let token = token(user);
    let _a1 = open(&a.ws_url(), &token).await;
    let _a2 = open(&a.ws_url(), &token).await;
    let (mut b1, _) = open(&b.ws_url(), &token).await;
    let both = serde_json::json!({"sockets": 3, "gateways": 2});
    until_presence(a.port, user, both.clone(), Duration::from_secs(5)).await;
    assert_eq!(presence(b.port, user), both);
    assert_eq!(
        presence(b.port, "someone-else"),
        serde_json::json!({"sockets": 0, "gateways": 0})
    );

    a.signal("-KILL");
    let killed = Instant::now();
    until_presence(
        b.port,
        user,
        serde_json::json!({"sockets": 1, "gateways": 1}),
        Duration::from_secs(10),
    )
    .await;
    let took = killed.elapsed();
    // The bound is the TTL; the margin covers one poll and one request on a busy machine.
    assert!(
        took <= TTL + Duration::from_millis(300),
        "dropped after {took:?}"
    );

    futures_util::SinkExt::close(&mut b1).await.unwrap();
    until_presence(
        b.port,
        user,
        serde_json::json!({"sockets": 0, "gateways": 0}),
        Duration::from_secs(5),
    )
    .await;
    drop(a);
}
