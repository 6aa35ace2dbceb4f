//! Per-user budgets (issue 12): replays wait for a slot, and what a socket may hold.

use std::time::Duration;

use ssot_testkit::{FaultProxy, RedisServer};

use crate::support::{Publisher, Received, TestGateway, connect, manager, read_until, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_sockets_wait_for_a_replay_slot_then_get_4001() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.addr());
    let options = ssot_gateway::GatewayOptions {
        max_replays_per_user: Some(1),
        replay_wait_ms: Some(100),
        ..Default::default()
    };
    let gw = TestGateway::start_with(manager(&proxy.url()).await, options).await;
    let mut publisher = Publisher::new(gw.addr);
    for n in 0..10 {
        publisher
            .publish("replayer", "e", serde_json::json!({ "n": n }))
            .await
            .unwrap();
    }
    publisher
        .publish("bystander", "e", serde_json::json!({ "n": 0 }))
        .await
        .unwrap();
    // Every read from Redis now takes ~300 ms (below the 400 ms command timeout).
    proxy.delay(Duration::from_millis(150));
    let url = gw.ws_url();
    let sockets = futures_util::future::join_all((0..4).map(|_| {
        let url = url.clone();
        async move {
            connect(&url, &token("replayer", 60), Some("0-0"))
                .await
                .unwrap()
        }
    }))
    .await;
    let (mut bystander, mut seen) = (
        connect(&url, &token("bystander", 60), Some("0-0"))
            .await
            .unwrap(),
        Received::default(),
    );
    let mut closed_4001 = 0;
    let mut complete = 0;
    for mut ws in sockets {
        let mut got = Received::default();
        read_until(&mut ws, &mut got, Duration::from_secs(10), |r| {
            r.close.is_some() || r.events.len() == 10
        })
        .await;
        match got.close {
            Some(4001) => closed_4001 += 1,
            None if got.events.len() == 10 => complete += 1,
            other => panic!("unexpected end {other:?} after {} events", got.events.len()),
        }
    }
    assert!(
        closed_4001 >= 1,
        "one replay at a time: the others waited and got 4001"
    );
    assert!(
        complete >= 1,
        "the socket holding the slot replayed everything"
    );
    // The slots are per user: another user's replay is not held up.
    assert!(
        read_until(&mut bystander, &mut seen, Duration::from_secs(5), |r| r
            .events
            .len()
            == 1)
        .await
    );
    assert_eq!(seen.close, None);
}
