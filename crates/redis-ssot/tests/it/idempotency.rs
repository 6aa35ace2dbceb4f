//! Idempotent appends ([`Events::append_idempotent`]): concurrent retries of one key store one
//! event, a reused key with other content is refused, hostile keys stay in their user's slot.

use std::time::Duration;

use redis_ssot::stores::events::{EventId, Events, EventsConfig, IdempotencyKey};
use redis_ssot::{Error, RedisManager, UserScope};
use serde_json::value::RawValue;

use crate::deployments::{Deployment, parts};
use crate::support::connect;

parts! {
    manager, deployment, connect;
    concurrent_retries_of_one_key_store_one_event =>
        concurrent_retries_of_one_key_store_one_event(manager, &deployment);
    a_key_reused_for_another_event_is_a_conflict =>
        a_key_reused_for_another_event_is_a_conflict(manager, &deployment);
    keys_are_per_user_and_expire => keys_are_per_user_and_expire(manager, &deployment);
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap()
}

fn key(raw: &str) -> IdempotencyKey {
    IdempotencyKey::parse(raw).unwrap()
}

/// Entries in a user's stream, read with redis-cli (not through the library).
fn stream_len(deployment: &Deployment, user: &UserScope) -> usize {
    let stream = format!("{}events", user.prefix());
    let lens: Vec<usize> = deployment
        .cli_each(&["XLEN", &stream])
        .iter()
        .filter_map(|answer| answer.trim().parse().ok())
        .collect();
    assert_eq!(lens.len(), 1, "one node owns {stream}");
    lens[0]
}

/// 64 tasks send the same publish with the same key at once, as retries of a caller whose
/// responses were lost would: exactly one event is stored, all 64 get its id, 63 are told
/// they were repeats. A key with `{`, `}` and `*` stays an ordinary key of the user's slot.
async fn concurrent_retries_of_one_key_store_one_event(
    manager: RedisManager,
    deployment: &Deployment,
) {
    deployment.flush();
    let events = Events::new(manager);
    let user = UserScope::parse("idem-alice").unwrap();
    let k = key("{order-42}*retry");
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (events, user, k) = (events.clone(), user.clone(), k.clone());
        tasks.push(tokio::spawn(async move {
            events
                .append_idempotent(&user, "paid", &raw(r#"{"order":42}"#), &k)
                .await
                .unwrap()
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let first = results[0].id;
    assert!(results.iter().all(|r| r.id == first), "one id for all");
    assert_eq!(results.iter().filter(|r| !r.duplicate).count(), 1);
    assert_eq!(stream_len(deployment, &user), 1, "one event stored");
    let page = events.replay_after(&user, EventId::ZERO, 10).await.unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].id, first);
    // Every key the publish made is the user's (one hash slot on a Cluster).
    let all = deployment.keys("*");
    assert!(
        all.iter().all(|k| k.starts_with(user.prefix())),
        "keys outside the user's prefix: {all:?}"
    );
}

/// The same key with another name or data stores nothing and names the first id; a new key
/// appends as usual; invalid keys are refused before Redis is asked.
async fn a_key_reused_for_another_event_is_a_conflict(
    manager: RedisManager,
    deployment: &Deployment,
) {
    deployment.flush();
    let events = Events::new(manager);
    let user = UserScope::parse("idem-bob").unwrap();
    let k = key("k-1");
    let first = events
        .append_idempotent(&user, "paid", &raw("1"), &k)
        .await
        .unwrap();
    assert!(!first.duplicate);
    for (name, data) in [("paid", "2"), ("refunded", "1")] {
        match events.append_idempotent(&user, name, &raw(data), &k).await {
            Err(Error::IdempotencyConflict { key, first: id }) => {
                assert_eq!(key, "k-1");
                assert_eq!(id, first.id.to_string());
            }
            other => panic!("{name} {data}: expected a conflict, got {other:?}"),
        }
    }
    let again = events
        .append_idempotent(&user, "paid", &raw("1"), &k)
        .await
        .unwrap();
    assert_eq!((again.id, again.duplicate), (first.id, true));
    let other = events
        .append_idempotent(&user, "paid", &raw("1"), &key("k-2"))
        .await
        .unwrap();
    assert!(!other.duplicate && other.id > first.id);
    assert_eq!(stream_len(deployment, &user), 2);
    for bad in ["", "has space", "tab\there", "é", &"x".repeat(129)] {
        assert!(
            matches!(IdempotencyKey::parse(bad), Err(Error::Invalid { .. })),
            "{bad:?} accepted"
        );
    }
    assert!(IdempotencyKey::parse(&"~".repeat(128)).is_ok());
}

/// A key is remembered per user (another user's same key appends), and only for the window.
async fn keys_are_per_user_and_expire(manager: RedisManager, deployment: &Deployment) {
    deployment.flush();
    let config = EventsConfig {
        idempotency_window: Duration::from_millis(300),
        ..EventsConfig::default()
    };
    let events = Events::with_config(manager, config);
    let (carol, dave) = (
        UserScope::parse("idem-carol").unwrap(),
        UserScope::parse("idem-dave").unwrap(),
    );
    let k = key("same");
    let c1 = events
        .append_idempotent(&carol, "e", &raw("1"), &k)
        .await
        .unwrap();
    let d1 = events
        .append_idempotent(&dave, "e", &raw("1"), &k)
        .await
        .unwrap();
    assert!(!c1.duplicate && !d1.duplicate, "keys are per user");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let c2 = events
        .append_idempotent(&carol, "e", &raw("1"), &k)
        .await
        .unwrap();
    assert!(!c2.duplicate && c2.id > c1.id, "remembered past its window");
    assert_eq!(stream_len(deployment, &carol), 2);
}
