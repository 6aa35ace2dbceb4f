//! `redis+sentinel://`: the manager finds the master through Sentinel and follows a failover.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis_ssot::{SubscriptionEvent, redis};
use ssot_testkit::RedisSentinel;
use tokio::time::Instant;

use crate::support::{connect, eventually};

/// Names of the manager's connections on `node`.
fn manager_connections(node: &ssot_testkit::RedisServer) -> Vec<String> {
    node.client_list()
        .into_iter()
        .map(|c| c.name)
        .filter(|name| name.starts_with("ssot:test:"))
        .collect()
}

/// Issue 10 section 5: 1 master, 1 replica, 3 Sentinels. The manager connects to the master
/// the Sentinels name; when it is SIGKILLed and the Sentinels promote the replica, writes
/// and the subscription follow to the new master within the failover time + 2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_follows_a_sentinel_failover() {
    let mut deployment = tokio::task::spawn_blocking(RedisSentinel::start)
        .await
        .unwrap();
    let manager = connect(&deployment.url()).await;
    let _: () = manager
        .query(redis::cmd("SET").arg("where").arg("first master"))
        .await
        .unwrap();
    assert_eq!(deployment.master().cli(&["GET", "where"]), "first master");
    assert!(!manager_connections(deployment.master()).is_empty());
    assert!(
        manager_connections(deployment.replica()).is_empty(),
        "nothing on the replica"
    );
    let mut sub = manager.subscribe("news").await.unwrap();

    // A writer that keeps writing its counter, recording when writes succeed.
    let successes: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let (manager, successes, stop) = (manager.clone(), successes.clone(), stop.clone());
        async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                n += 1;
                let set = redis::cmd("SET").arg("counter").arg(n).clone();
                if manager.query::<()>(&set).await.is_ok() {
                    successes.lock().unwrap().push((Instant::now(), n));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let killed_at = Instant::now();
    let (deployment, took) = tokio::task::spawn_blocking(move || {
        let took = deployment.kill_master_and_wait_failover();
        (deployment, took)
    })
    .await
    .unwrap();
    // Writes succeed again, on the promoted replica, within the failover time + 2 s.
    let followed = eventually(
        Duration::from_secs(10),
        "a write after the failover",
        || {
            let successes = successes.lock().unwrap();
            let back = successes
                .last()
                .is_some_and(|(at, _)| *at > killed_at + took);
            async move { back }
        },
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Release);
    writer.await.unwrap();
    let first_after = successes
        .lock()
        .unwrap()
        .iter()
        .find(|(at, _)| *at > killed_at)
        .map(|(at, n)| (at.duration_since(killed_at), *n))
        .unwrap();
    println!(
        "Sentinel failover took {took:?}; the manager wrote again {:?} after the kill",
        first_after.0
    );
    assert!(
        first_after.0 <= took + Duration::from_secs(2),
        "first write {:?} after the kill; the failover took {took:?} (waited {followed:?} more)",
        first_after.0
    );
    let last = successes.lock().unwrap().last().unwrap().1;
    let master = deployment.master();
    assert_eq!(master.cli(&["GET", "counter"]), last.to_string());
    assert!(!manager_connections(master).is_empty());

    // The subscription followed as well.
    eventually(
        Duration::from_secs(3),
        "a message after the failover",
        || {
            let manager = manager.clone();
            async move { manager.publish("news", "after").await.is_ok_and(|n| n > 0) }
        },
    )
    .await;
    let got = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match sub.recv().await {
                Some(SubscriptionEvent::Message(m)) if m.as_ref() == b"after" => return true,
                Some(_) => continue,
                None => return false,
            }
        }
    })
    .await;
    assert_eq!(got, Ok(true), "the subscription receives on the new master");
}
