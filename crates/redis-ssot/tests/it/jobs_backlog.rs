//! Issue 12, item 8: a job stream is bounded, and the bound never drops an accepted job: an
//! enqueue beyond `max_len` is refused with `Error::QueueFull`, atomically.

use std::collections::BTreeSet;
use std::time::Duration;

use redis_ssot::Error;
use redis_ssot::stores::jobs::{Jobs, JobsConfig, NewJob};
use serde_json::json;
use ssot_testkit::RedisServer;

use crate::support::connect;

fn job(user: &str, key: Option<&str>) -> NewJob {
    NewJob {
        user: user.parse().unwrap(),
        kind: "chat".into(),
        payload: json!({ "message_id": key, "text": "hi" }),
        idempotency_key: key.map(str::to_owned),
    }
}

fn bounded(
    redis: &redis_ssot::RedisManager,
    queue: &str,
    max_len: u64,
) -> redis_ssot::Result<Jobs> {
    let config = JobsConfig {
        max_len,
        ..JobsConfig::default()
    };
    Jobs::with_config(redis.clone(), queue, config)
}

fn is_full(result: &redis_ssot::Result<redis_ssot::stores::jobs::Enqueued>) -> bool {
    matches!(result, Err(Error::QueueFull { queue, max_len: 3 }) if queue == "bounded")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_new_jobs_and_keeps_every_accepted_one() {
    let server = RedisServer::start();
    let redis = connect(&server.url()).await;
    let jobs = bounded(&redis, "bounded", 3).unwrap();

    let mut accepted = Vec::new();
    for key in ["m1", "m2"] {
        accepted.push(jobs.enqueue(job("u", Some(key))).await.unwrap().id);
    }
    accepted.push(jobs.enqueue(job("v", None)).await.unwrap().id);

    // Full: a new key and a job without key are refused, with a hint to come back.
    let refused = jobs.enqueue(job("u", Some("m4"))).await;
    assert!(is_full(&refused), "{refused:?}");
    let err = refused.unwrap_err();
    assert!(!err.is_transient(), "not a Redis fault");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert!(is_full(&jobs.enqueue(job("v", None)).await));
    // A retry of an accepted message still gets its job, not an error.
    let again = jobs.enqueue(job("u", Some("m1"))).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.id, accepted[0]);
    // The refused key was not remembered: it is accepted once there is room.
    let claimed = jobs.claim("c", 10, Duration::ZERO).await.unwrap();
    let ids: Vec<&str> = claimed.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, accepted, "every accepted job is still there, in order");
    // In flight counts too: acking one makes room for exactly one.
    assert!(is_full(&jobs.enqueue(job("u", Some("m4"))).await));
    assert!(jobs.ack(&claimed[0]).await.unwrap());
    let m4 = jobs.enqueue(job("u", Some("m4"))).await.unwrap();
    assert!(!m4.duplicate);
    assert!(is_full(&jobs.enqueue(job("u", Some("m5"))).await));
    let len: u64 = redis
        .query(redis_ssot::redis::cmd("XLEN").arg("ssot:{jobs:bounded}:stream"))
        .await
        .unwrap();
    assert_eq!(len, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_never_overshoot_the_bound() {
    let server = RedisServer::start();
    let redis = connect(&server.url()).await;
    let jobs = bounded(&redis, "race", 25).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let jobs = jobs.clone();
        tasks.spawn(async move { jobs.enqueue(job(&format!("u{i}"), Some("k"))).await });
    }
    let (mut ok, mut full) = (BTreeSet::new(), 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(enqueued) => assert!(ok.insert(enqueued.id)),
            Err(Error::QueueFull { .. }) => full += 1,
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!((ok.len(), full), (25, 75));
    let claimed = jobs.claim("c", 200, Duration::ZERO).await.unwrap();
    let claimed: BTreeSet<String> = claimed.into_iter().map(|j| j.id).collect();
    assert_eq!(claimed, ok);
}

#[tokio::test]
async fn a_zero_bound_is_refused() {
    let server = RedisServer::start();
    let redis = connect(&server.url()).await;
    let err = bounded(&redis, "zero", 0).unwrap_err();
    assert!(err.to_string().contains("max_len"), "{err}");
}
