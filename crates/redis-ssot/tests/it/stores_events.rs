//! The per-user event log: ordering, replay, retention, live delivery, isolation, restarts.

use std::collections::HashMap;
use std::time::Duration;

use redis_ssot::stores::events::{Event, EventId, Events, EventsConfig, LiveEvent};
use redis_ssot::{Error, RedisManager, UserScope};
use serde_json::value::RawValue;
use ssot_testkit::RedisServer;

use crate::deployments::parts;
use crate::support::{connect, eventually};

fn raw(json: String) -> Box<RawValue> {
    RawValue::from_string(json).unwrap()
}

/// Every event after `after`, read in pages as a consumer would.
async fn replay_all(events: &Events, user: &UserScope, after: EventId) -> Vec<Event> {
    let mut all = Vec::new();
    let mut cursor = after;
    loop {
        let page = events.replay_after(user, cursor, 1000).await.unwrap();
        assert!(!page.truncated);
        let Some(last) = page.events.last() else {
            return all;
        };
        cursor = last.id;
        all.extend(page.events);
    }
}

async fn concurrent_appends_replay_in_order(manager: RedisManager) {
    let events = Events::new(manager);
    let user = UserScope::parse("alice").unwrap();
    let mut tasks = Vec::new();
    for task in 0..8u32 {
        let events = events.clone();
        let user = user.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..1250u32 {
                let data = raw(format!("{{\"task\":{task},\"n\":{n}}}"));
                ids.push(events.append(&user, "tick", &data).await.unwrap());
            }
            ids
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert_eq!(acked.len(), 10_000);
    // Read everything back in pages.
    let all = replay_all(&events, &user, EventId::ZERO).await;
    assert_eq!(all.len(), 10_000, "every event present");
    let mut seen = std::collections::HashSet::new();
    assert!(all.iter().all(|e| seen.insert(e.id)), "each event once");
    assert!(
        all.windows(2).all(|w| w[0].id < w[1].id),
        "ids strictly increase"
    );
    let mut next: HashMap<u64, u64> = HashMap::new();
    for event in &all {
        let v: serde_json::Value = serde_json::from_str(event.data.get()).unwrap();
        let (task, n) = (v["task"].as_u64().unwrap(), v["n"].as_u64().unwrap());
        let expected = next.entry(task).or_insert(0);
        assert_eq!(n, *expected, "per-task order kept for task {task}");
        *expected += 1;
    }
    // Replay after any id returns exactly the suffix.
    for i in [0usize, 1, 17, 4999, 9998, 9999] {
        let after = all[i].id;
        let replay = replay_all(&events, &user, after).await;
        let expected: Vec<EventId> = all[i + 1..].iter().map(|e| e.id).collect();
        let got: Vec<EventId> = replay.iter().map(|e| e.id).collect();
        assert_eq!(got, expected, "suffix after index {i}");
    }
    assert_eq!(events.last_id(&user).await.unwrap(), all[9999].id);
}

async fn retention_is_reported_not_silent(manager: RedisManager) {
    let config = EventsConfig {
        max_len: 10,
        ..EventsConfig::default()
    };
    let events = Events::with_config(manager, config);
    let user = UserScope::parse("trim").unwrap();
    let first = events.append(&user, "e", &raw("0".into())).await.unwrap();
    for n in 1..500 {
        events
            .append(&user, "e", &raw(n.to_string()))
            .await
            .unwrap();
    }
    let replay = events.replay_after(&user, first, 1000).await.unwrap();
    assert!(replay.truncated, "resuming from a trimmed id must say so");
    let last = events.last_id(&user).await.unwrap();
    let replay = events.replay_after(&user, last, 1000).await.unwrap();
    assert!(!replay.truncated && replay.events.is_empty());
}

async fn retention_by_age_trims_old_events_and_expires_idle_logs(manager: RedisManager) {
    let max_age = Duration::from_millis(300);
    let config = EventsConfig {
        max_age,
        ..EventsConfig::default()
    };
    let events = Events::with_config(manager.clone(), config);
    let user = UserScope::parse("aged").unwrap();
    let first = events.append(&user, "e", &raw("0".into())).await.unwrap();
    for n in 1..250 {
        events
            .append(&user, "e", &raw(n.to_string()))
            .await
            .unwrap();
    }
    tokio::time::sleep(max_age + Duration::from_millis(100)).await;
    let fresh = events
        .append(&user, "e", &raw("\"new\"".into()))
        .await
        .unwrap();
    // Trimming is approximate (whole stream nodes of ~100 entries), but old ones go.
    let kept = events
        .replay_after(&user, EventId::ZERO, 1000)
        .await
        .unwrap();
    assert!(
        kept.events.len() <= 151,
        "{} of 251 events kept after max-age",
        kept.events.len()
    );
    assert_eq!(kept.events.last().map(|e| e.id), Some(fresh));
    let replay = events.replay_after(&user, first, 1000).await.unwrap();
    assert!(replay.truncated, "resuming from an aged-out id must say so");
    let replay = events.replay_after(&user, fresh, 1000).await.unwrap();
    assert!(!replay.truncated && replay.events.is_empty());

    // An idle log expires after twice max-age; resuming from before then says so too.
    let key = "ssot:{u:aged}:events";
    let exists = || async {
        manager
            .query::<i64>(redis_ssot::redis::cmd("EXISTS").arg(key))
            .await
            .unwrap()
    };
    assert_eq!(exists().await, 1);
    eventually(
        max_age * 2 + Duration::from_secs(2),
        "the idle log expires",
        || async { exists().await == 0 },
    )
    .await;
    let replay = events.replay_after(&user, fresh, 1000).await.unwrap();
    assert!(replay.truncated && replay.events.is_empty());
}

async fn live_events_reach_only_their_user(manager: RedisManager) {
    let events = Events::new(manager);
    let alice = UserScope::parse("alice-live").unwrap();
    let bob = UserScope::parse("bob-live").unwrap();
    let mut alice_sub = events.subscribe(&alice).await.unwrap();
    let mut bob_sub = events.subscribe(&bob).await.unwrap();
    let a = events
        .append(&alice, "hello", &raw("{\"to\":\"alice\"}".into()))
        .await
        .unwrap();
    let b = events
        .append(&bob, "hello", &raw("{\"to\":\"bob\"}".into()))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(2), alice_sub.recv())
        .await
        .unwrap();
    match got {
        Some(LiveEvent::Event(frame)) => {
            assert_eq!(frame.id(), a);
            let event = frame.event().unwrap();
            assert_eq!((event.id, event.name.as_str()), (a, "hello"));
            assert_eq!(event.data.get(), "{\"to\":\"alice\"}");
            // The live frame is the same JSON a replay renders.
            let replayed = events
                .replay_after(&alice, EventId::ZERO, 10)
                .await
                .unwrap();
            assert_eq!(frame.json(), replayed.events[0].to_json().as_bytes());
        }
        other => panic!("expected alice's event, got {other:?}"),
    }
    match tokio::time::timeout(Duration::from_secs(2), bob_sub.recv())
        .await
        .unwrap()
    {
        Some(LiveEvent::Event(frame)) => assert_eq!(frame.id(), b),
        other => panic!("expected bob's event, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(200), alice_sub.recv())
            .await
            .is_err(),
        "alice sees nothing of bob's"
    );
}

async fn bad_input_is_rejected(manager: RedisManager) {
    let events = Events::new(manager);
    let user = UserScope::parse("carol").unwrap();
    let big = raw(format!("\"{}\"", "x".repeat(70 * 1024)));
    assert!(matches!(
        events.append(&user, "e", &big).await,
        Err(Error::Invalid { .. })
    ));
    for name in ["", "a b", "x\ny", "{tag}"] {
        let r = events.append(&user, name, &raw("1".into())).await;
        assert!(matches!(r, Err(Error::Invalid { .. })), "{name:?}");
    }
    assert_eq!(
        events.last_id(&user).await.unwrap(),
        EventId::ZERO,
        "nothing stored"
    );
}

async fn append_once_deduplicates_per_group_and_sequence(manager: RedisManager) {
    let events = Events::new(manager);
    let user = UserScope::parse("once").unwrap();
    let first = events
        .append_once(&user, "step", &raw("1".into()), "job-1", 1)
        .await
        .unwrap();
    assert!(!first.duplicate);
    let again = events
        .append_once(&user, "step", &raw("1".into()), "job-1", 1)
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.id, first.id);
    let next = events
        .append_once(&user, "step", &raw("2".into()), "job-1", 2)
        .await
        .unwrap();
    let other = events
        .append_once(&user, "step", &raw("1".into()), "job-2", 1)
        .await
        .unwrap();
    assert!(!next.duplicate && !other.duplicate);
    let replay = events.replay_after(&user, EventId::ZERO, 10).await.unwrap();
    assert_eq!(replay.events.len(), 3, "the duplicate added nothing");
    let bad = events
        .append_once(&user, "step", &raw("1".into()), "a b", 1)
        .await;
    assert!(matches!(bad, Err(Error::Invalid { .. })));
}

// Everything the event log must do, on a single server and on a cluster.
parts! {
    manager, deployment, connect;
    concurrent_appends_replay_in_order => concurrent_appends_replay_in_order(manager);
    retention_is_reported_not_silent => retention_is_reported_not_silent(manager);
    retention_by_age_trims_old_events_and_expires_idle_logs =>
        retention_by_age_trims_old_events_and_expires_idle_logs(manager);
    live_events_reach_only_their_user => live_events_reach_only_their_user(manager);
    append_once_deduplicates_per_group_and_sequence =>
        append_once_deduplicates_per_group_and_sequence(manager);
    bad_input_is_rejected => bad_input_is_rejected(manager);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_survive_a_restart_with_aof() {
    let mut server = RedisServer::builder().aof(true).start();
    let manager = connect(&server.url()).await;
    let events = Events::new(manager.clone());
    let user = UserScope::parse("dave").unwrap();
    let mut sub = events.subscribe(&user).await.unwrap();
    let before = events.append(&user, "e", &raw("1".into())).await.unwrap();
    assert!(matches!(sub.recv().await, Some(LiveEvent::Event(_))));
    server.kill();
    let err = events
        .append(&user, "e", &raw("2".into()))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    server.restart();
    let after = eventually(Duration::from_secs(5), "append works again", || {
        let events = events.clone();
        let user = user.clone();
        async move { events.append(&user, "e", &raw("3".into())).await.is_ok() }
    })
    .await;
    eprintln!("append recovered in {after:?}");
    // The subscription reports the gap, and replay fills it.
    let mut saw_gap = false;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(2), sub.recv()).await {
        if ev == LiveEvent::Gap {
            saw_gap = true;
            break;
        }
    }
    assert!(saw_gap, "a Gap after the subscriber reconnected");
    // The whole log: the event acknowledged before the kill came back from the AOF, the
    // one refused during the outage is absent, the one after the restart follows.
    let replay = events
        .replay_after(&user, EventId::ZERO, 100)
        .await
        .unwrap();
    assert!(!replay.truncated);
    let log: Vec<(EventId, &str)> = replay.events.iter().map(|e| (e.id, e.data.get())).collect();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0], (before, "1"), "the event stored before the kill");
    assert_eq!(log[1].1, "3", "the event stored after the restart");
    assert!(log[1].0 > before);
}
