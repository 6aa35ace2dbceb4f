//! Lanes: long reads (replays) never starve short calls or open the breaker that guards them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis_ssot::stores::events::{EventId, Events, EventsConfig};
use redis_ssot::{BreakerState, UserScope};
use serde_json::value::RawValue;
use ssot_testkit::{RedisServer, flood};
use tokio::time::Instant;

use crate::support::connect;

fn data(n: usize) -> Box<RawValue> {
    RawValue::from_string(flood::event_data(n)).unwrap()
}

/// Appends `total` events for `user`, 1 in 6 of 8 KB, with a few appends in flight.
async fn seed(events: &Events, user: &UserScope, total: usize) {
    let (events, user) = (events.clone(), user.clone());
    flood::seed(total, move |n| {
        let (events, user) = (events.clone(), user.clone());
        async move {
            match events.append(&user, "tool_executing", &data(n)).await {
                Ok(_) => Ok(()),
                Err(err) if err.is_transient() => Err(err.to_string()),
                Err(err) => panic!("seeding: {err}"),
            }
        }
    })
    .await;
}

/// Finding 1 of issue 12: one user's 300 replay loops over a 10,000-event stream must not
/// hurt another user: all their appends succeed, p99 under 50 ms, the breaker stays closed
/// and the manager stays healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_flood_of_one_user_leaves_others_untouched() {
    let server = RedisServer::start();
    let manager = connect(&server.url()).await;
    let events = Events::new(manager.clone());
    let hot = UserScope::parse("hot").unwrap();
    let calm = UserScope::parse("calm").unwrap();
    seed(&events, &hot, 10_000).await;

    // Every breaker transition and every unhealthy report is noted.
    let left_closed = Arc::new(AtomicBool::new(false));
    let mut breaker = manager.watch_breaker();
    let watcher = {
        let left_closed = Arc::clone(&left_closed);
        tokio::spawn(async move {
            while breaker.changed().await.is_ok() {
                if *breaker.borrow_and_update() != BreakerState::Closed {
                    left_closed.store(true, Ordering::Release);
                }
            }
        })
    };
    let unhealthy = Arc::new(AtomicU64::new(0));
    let mut health = manager.watch_health();
    let health_watcher = {
        let unhealthy = Arc::clone(&unhealthy);
        tokio::spawn(async move {
            while health.changed().await.is_ok() {
                if !health.borrow_and_update().healthy {
                    unhealthy.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    let stop = Arc::new(AtomicBool::new(false));
    let pages = Arc::new(AtomicU64::new(0));
    let mut replayers = Vec::new();
    for _ in 0..300 {
        let (events, hot) = (events.clone(), hot.clone());
        let (stop, pages) = (Arc::clone(&stop), Arc::clone(&pages));
        replayers.push(tokio::spawn(async move {
            let mut after = EventId::ZERO;
            while !stop.load(Ordering::Acquire) {
                match events.replay_after(&hot, after, 256).await {
                    Ok(page) => {
                        pages.fetch_add(1, Ordering::Relaxed);
                        after = page.events.last().map_or(EventId::ZERO, |e| e.id);
                    }
                    // Refused or queued out: a real client would retry a bit later.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    // Let the flood build up before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    let until = Instant::now() + Duration::from_secs(6);
    let mut n = 0;
    while Instant::now() < until {
        let body = RawValue::from_string(format!("{{\"n\":{n}}}")).unwrap();
        let start = Instant::now();
        match events.append(&calm, "message", &body).await {
            Ok(_) => latencies.push(start.elapsed()),
            Err(err) => failures.push(err.to_string()),
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Release);
    for replayer in replayers {
        replayer.await.unwrap();
    }
    watcher.abort();
    health_watcher.abort();

    assert!(
        failures.is_empty(),
        "{} of {n} appends failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    latencies.sort_unstable();
    let p99 = latencies[latencies.len() * 99 / 100];
    let pages = pages.load(Ordering::Relaxed);
    assert!(pages >= 300, "the replay flood ran: {pages} pages");
    assert!(
        p99 < Duration::from_millis(50),
        "p99 {p99:?} over {} appends",
        latencies.len()
    );
    assert!(
        !left_closed.load(Ordering::Acquire),
        "the breaker left Closed"
    );
    assert_eq!(manager.breaker_state(), BreakerState::Closed);
    assert_eq!(
        unhealthy.load(Ordering::Relaxed),
        0,
        "health reports said unhealthy"
    );
    assert!(manager.health().healthy, "{:?}", manager.health());
    // The replays ran on their own connection.
    let names = manager.open_connections();
    assert!(names.iter().any(|n| n == "ssot:test:bulk"), "{names:?}");
}

/// Reads the user's whole log in pages; returns each page's event numbers (`data.n`).
async fn pages(events: &Events, user: &UserScope) -> Vec<Vec<u64>> {
    let mut pages = Vec::new();
    let mut after = EventId::ZERO;
    loop {
        let page = events.replay_after(user, after, 256).await.unwrap();
        let Some(last) = page.events.last() else {
            return pages;
        };
        after = last.id;
        let number = |data: &RawValue| {
            let value: serde_json::Value = serde_json::from_str(data.get()).unwrap();
            value["n"].as_u64().unwrap()
        };
        pages.push(page.events.iter().map(|e| number(&e.data)).collect());
    }
}

/// A replay page stops before the entry that would exceed the byte budget, and a single
/// entry larger than the budget still comes alone, so a reader always progresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_pages_are_bounded_in_bytes() {
    let server = RedisServer::start();
    let manager = connect(&server.url()).await;
    let with_budget = |bytes: usize| {
        let config = EventsConfig {
            replay_page_bytes: bytes,
            ..EventsConfig::default()
        };
        Events::with_config(manager.clone(), config)
    };
    let user = UserScope::parse("pager").unwrap();
    // 12 events: n = 0 and 6 are 8 KB, the rest small.
    let events = with_budget(20 * 1024);
    for n in 0..12 {
        events.append(&user, "e", &data(n)).await.unwrap();
    }
    assert_eq!(
        pages(&events, &user).await,
        vec![(0..12).collect::<Vec<u64>>()],
        "12 events of about 17 KB fit one 20 KiB page"
    );
    // Each 8 KB event exceeds a 1 KiB budget and comes alone; the small ones share pages.
    assert_eq!(
        pages(&with_budget(1024), &user).await,
        vec![vec![0], vec![1, 2, 3, 4, 5], vec![6], vec![7, 8, 9, 10, 11]]
    );
}
