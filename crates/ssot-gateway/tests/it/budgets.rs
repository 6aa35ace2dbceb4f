//! Per-user budgets (issue 12): replays wait for a slot, and what a socket may hold.

use std::time::Duration;

use futures_util::StreamExt;
use ssot_testkit::{FaultProxy, RedisServer};

use crate::support::{
    Publisher, Received, TestGateway, connect, connect_ready, manager, read_until, record, token,
};

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

/// A reader that keeps reading, only slower than its events come: once it is more than
/// `max-queued-bytes` (1 MiB) behind, it is closed with 4000 and resumes without loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_steady_reader_is_closed_with_4000_once_too_far_behind() {
    let server = RedisServer::start();
    let gw = TestGateway::start(manager(&server.url()).await).await;
    let token = token("steady", 600);
    let (mut ws, mut got) = connect_ready(&gw.ws_url(), &token).await;
    let addr = gw.addr;
    // 24 MB in 60 KB events, as fast as the publish API takes them.
    let publishing = tokio::spawn(async move {
        let mut publisher = Publisher::new(addr);
        let blob = "x".repeat(60 * 1024);
        let mut ids = Vec::new();
        for n in 0..400 {
            let data = serde_json::json!({ "n": n, "blob": blob });
            ids.push(publisher.publish("steady", "big", data).await.unwrap());
        }
        ids
    });
    // One frame every 20 ms (3 MB/s): never stalled for long, so no write waits 5 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while got.close.is_none() && got.events.len() < 400 && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(6), ws.next()).await {
            Ok(Some(Ok(message))) => record(message, &mut got),
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let published = publishing.await.unwrap();
    assert_eq!(
        got.close,
        Some(4000),
        "after {} of 400 events",
        got.events.len()
    );
    assert!(got.events.len() < 400);
    // Resuming gets exactly the rest, in order.
    let last = got.events.last().map(|(id, _)| id.clone());
    let mut resumed = connect(&gw.ws_url(), &token, last.as_deref())
        .await
        .unwrap();
    let mut rest = Received::default();
    let missing = published.len() - got.events.len();
    assert!(
        read_until(&mut resumed, &mut rest, Duration::from_secs(20), |r| r
            .events
            .len()
            >= missing)
        .await
    );
    let mut ids: Vec<String> = got.events.iter().map(|(id, _)| id.clone()).collect();
    ids.extend(rest.events.iter().map(|(id, _)| id.clone()));
    assert_eq!(ids, published, "nothing lost, nothing twice");
}
