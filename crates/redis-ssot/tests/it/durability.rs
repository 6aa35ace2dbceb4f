//! Opt-in durability: appends acknowledged by replicas (`WAIT`).

use std::time::Duration;

use redis_ssot::stores::events::{Events, EventsConfig};
use redis_ssot::{BreakerState, Error, RedisManager, UserScope};
use serde_json::value::RawValue;
use ssot_testkit::RedisServer;
use tokio::time::Instant;

use crate::support::{connect, eventually};

/// Events acknowledged by one replica, waiting at most 500 ms.
fn durable_events(manager: &RedisManager) -> Events {
    let config = EventsConfig {
        min_replicas_acked: 1,
        wait_timeout: Duration::from_millis(500),
        ..EventsConfig::default()
    };
    Events::with_config(manager.clone(), config)
}

/// A master and a replica attached to it, in sync.
fn master_and_replica() -> (RedisServer, RedisServer) {
    let master = RedisServer::start();
    let replica = RedisServer::start();
    replica.cli(&["REPLICAOF", "127.0.0.1", &master.port().to_string()]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !replica
        .cli(&["INFO", "replication"])
        .contains("master_link_status:up")
    {
        assert!(std::time::Instant::now() < deadline, "replica never synced");
        std::thread::sleep(Duration::from_millis(20));
    }
    (master, replica)
}

/// Issue 10 section 3: with `min_replicas_acked = 1` an append returns once the replica has
/// it; while the replica is frozen it fails with the distinct, retryable `NotReplicated`
/// after the wait timeout, without stalling other calls or opening the breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_wait_for_a_replica() {
    let (master, replica) = tokio::task::spawn_blocking(master_and_replica)
        .await
        .unwrap();
    let manager = connect(&master.url()).await;
    let durable = durable_events(&manager);
    let plain = Events::new(manager.clone());
    let user = UserScope::parse("durable").unwrap();
    let other = UserScope::parse("other").unwrap();
    let data = RawValue::from_string("{\"n\":1}".to_owned()).unwrap();
    let key = format!("ssot:{{u:{}}}:events", user.user());

    durable.append(&user, "tick", &data).await.unwrap();
    assert_eq!(
        replica.cli(&["XLEN", &key]),
        "1",
        "on the replica when acknowledged"
    );

    replica.pause();
    let start = Instant::now();
    let pending = tokio::spawn({
        let (durable, user, data) = (durable.clone(), user.clone(), data.clone());
        async move { durable.append(&user, "tick", &data).await }
    });
    // While that append waits for the frozen replica, other calls run as usual.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..20 {
        let quick = Instant::now();
        plain.append(&other, "tick", &data).await.unwrap();
        assert!(
            quick.elapsed() < Duration::from_millis(200),
            "{:?}",
            quick.elapsed()
        );
    }
    let result = pending.await.unwrap();
    let waited = start.elapsed();
    match &result {
        Err(Error::NotReplicated {
            acked: 0,
            wanted: 1,
            after,
        }) => assert_eq!(*after, Duration::from_millis(500)),
        other => panic!("expected NotReplicated, got {other:?}"),
    }
    let err = result.unwrap_err();
    assert!(err.is_transient(), "retryable");
    assert!(waited >= Duration::from_millis(500), "waited {waited:?}");
    assert_eq!(manager.breaker_state(), BreakerState::Closed);
    // The write is on the master all the same.
    assert_eq!(master.cli(&["XLEN", &key]), "2");

    replica.resume();
    eventually(Duration::from_secs(5), "acknowledged again", || {
        let (durable, user, data) = (durable.clone(), user.clone(), data.clone());
        async move { durable.append(&user, "tick", &data).await.is_ok() }
    })
    .await;
    let names = manager.open_connections();
    assert!(names.iter().any(|n| n == "ssot:test:acked"), "{names:?}");
}

/// Issue 10 section 3 on a Cluster: with `min_replicas_acked = 1`, every append that was
/// acknowledged survives its master's SIGKILL and the replica's promotion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_a_failover() {
    let (cluster, manager) = crate::failover::cluster_and_manager(1).await;
    let durable = durable_events(&manager);
    let user = UserScope::parse("kept").unwrap();
    let victim = cluster.master_of_slot(cluster.key_slot(&format!("{{u:{}}}", user.user())));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let (durable, user, stop) = (durable.clone(), user.clone(), stop.clone());
        async move {
            let mut acked = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let data = RawValue::from_string(format!("{{\"n\":{n}}}")).unwrap();
                if let Ok(id) = durable.append(&user, "tick", &data).await {
                    acked.push(id);
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            acked
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cluster = tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        cluster.kill_master_and_wait_failover(victim);
        cluster
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Release);
    let acked = writer.await.unwrap();
    assert!(
        acked.len() > 20,
        "appends were acknowledged: {}",
        acked.len()
    );

    let mut stored = std::collections::HashSet::new();
    let mut after = redis_ssot::stores::events::EventId::ZERO;
    loop {
        let page = durable.replay_after(&user, after, 1000).await.unwrap();
        let Some(last) = page.events.last() else {
            break;
        };
        after = last.id;
        stored.extend(page.events.iter().map(|e| e.id));
    }
    let lost: Vec<_> = acked.iter().filter(|id| !stored.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged appends lost: {lost:?}",
        lost.len(),
        acked.len()
    );
    drop(cluster);
}
