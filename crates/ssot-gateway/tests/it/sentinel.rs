//! Issue 10, Must show "Sentinel failover": a gateway on `redis+sentinel://`, a socket open,
//! the master SIGKILLed and the replica promoted by the Sentinels. The socket stays open and
//! receives every acknowledged event, before and after, exactly once and in order.

use std::time::Duration;

use ssot_testkit::RedisSentinel;
use tokio::time::Instant;

use crate::support::{Publisher, TestGateway, connect_ready, manager, parse_id, read_until, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_stays_open_across_a_sentinel_failover() {
    let mut deployment = tokio::task::spawn_blocking(RedisSentinel::start)
        .await
        .unwrap();
    let gw = TestGateway::start(manager(&deployment.url()).await).await;
    let (mut ws, mut got) = connect_ready(&gw.ws_url(), &token("sentinel-user", 600)).await;
    assert_eq!(got.statuses, ["ok"]);
    let mut publisher = Publisher::new(gw.addr);
    let mut acked = Vec::new();
    for n in 0..3 {
        let id = publisher
            .publish("sentinel-user", "tick", serde_json::json!({ "n": n }))
            .await
            .unwrap();
        acked.push(id);
    }
    // The replica has them before the kill (nothing in flight is what this test is about).
    let deadline = Instant::now() + Duration::from_secs(5);
    while deployment
        .replica()
        .cli(&["XLEN", "ssot:{u:sentinel-user}:events"])
        != "3"
    {
        assert!(Instant::now() < deadline, "replica never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (deployment, _) = tokio::task::spawn_blocking(move || {
        let took = deployment.kill_master_and_wait_failover();
        (deployment, took)
    })
    .await
    .unwrap();
    // Publishes are accepted again once the gateway follows the new master.
    let mut n = 3;
    let deadline = Instant::now() + Duration::from_secs(10);
    while acked.len() < 6 {
        assert!(
            Instant::now() < deadline,
            "publishes not accepted after the failover"
        );
        if let Ok(id) = publisher
            .publish("sentinel-user", "tick", serde_json::json!({ "n": n }))
            .await
        {
            acked.push(id);
            n += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let last = acked.last().unwrap().clone();
    assert!(
        read_until(&mut ws, &mut got, Duration::from_secs(10), |r| {
            r.events.iter().any(|(id, _)| *id == last)
                && r.statuses.last().map(String::as_str) == Some("ok")
        })
        .await,
        "the socket receives after the failover and is told Redis is back: {got:?}"
    );
    assert_eq!(got.close, None, "socket closed");
    let ids: Vec<String> = got.events.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, acked, "every acknowledged event once, in order");
    assert!(ids.windows(2).all(|w| parse_id(&w[0]) < parse_id(&w[1])));
    drop(deployment);
}
