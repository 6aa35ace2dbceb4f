//! Presence reports: gateways' diffs add up per user; a report that finds its hash gone
//! (Redis lost the keys) is sent again in full; a gateway that leaves stops counting.

use std::collections::HashMap;
use std::time::Duration;

use redis_ssot::UserId;
use redis_ssot::stores::presence::{Presence, Reported, UserPresence};
use ssot_testkit::RedisServer;

use crate::support::connect;

fn counts(pairs: &[(&str, usize)]) -> HashMap<UserId, usize> {
    pairs
        .iter()
        .map(|(user, n)| (UserId::new(user).unwrap(), *n))
        .collect()
}

fn seen(sockets: u64, gateways: u64) -> UserPresence {
    UserPresence { sockets, gateways }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_add_up_and_survive_lost_keys() {
    let server = RedisServer::start();
    let presence = Presence::new(connect(&server.url()).await, Duration::from_secs(60));
    let (ann, bob) = (UserId::new("ann").unwrap(), UserId::new("bob").unwrap());
    let (mut one, mut two) = (Reported::default(), Reported::default());

    presence
        .report("gw-1", &counts(&[("ann", 2), ("bob", 1)]), &mut one)
        .await
        .unwrap();
    presence
        .report("gw-2", &counts(&[("ann", 1)]), &mut two)
        .await
        .unwrap();
    assert_eq!(presence.of(&ann).await.unwrap(), seen(3, 2));
    assert_eq!(presence.of(&bob).await.unwrap(), seen(1, 1));

    // A diff: ann closed a socket on gw-1, bob closed his last.
    presence
        .report("gw-1", &counts(&[("ann", 1)]), &mut one)
        .await
        .unwrap();
    assert_eq!(presence.of(&ann).await.unwrap(), seen(2, 2));
    assert_eq!(presence.of(&bob).await.unwrap(), seen(0, 0));

    // Redis loses everything: an unchanged report is sent again in full.
    server.cli(&["FLUSHALL"]);
    assert_eq!(presence.of(&ann).await.unwrap(), seen(0, 0));
    presence
        .report("gw-1", &counts(&[("ann", 1)]), &mut one)
        .await
        .unwrap();
    assert_eq!(presence.of(&ann).await.unwrap(), seen(1, 1));

    presence.leave("gw-1").await.unwrap();
    assert_eq!(presence.of(&ann).await.unwrap(), seen(0, 0));
}

/// A report that expired does not count, even while its hash would still be there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_report_does_not_count() {
    let server = RedisServer::start();
    let presence = Presence::new(connect(&server.url()).await, Duration::from_millis(300));
    let ann = UserId::new("ann").unwrap();
    let mut last = Reported::default();
    presence
        .report("gw-1", &counts(&[("ann", 4)]), &mut last)
        .await
        .unwrap();
    assert_eq!(presence.of(&ann).await.unwrap(), seen(4, 1));
    server.cli(&["PERSIST", "ssot:{presence}:gw:gw-1"]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(presence.of(&ann).await.unwrap(), seen(0, 0));
}
