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

fn user_full(result: &redis_ssot::Result<redis_ssot::stores::jobs::Enqueued>) -> bool {
    let full = |queue: &str, max_per_user| queue == "shared" && max_per_user == 3;
    matches!(result, Err(Error::UserQueueFull { queue, max_per_user }) if full(queue, *max_per_user))
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

/// Issue 12: one user cannot fill the backlog everyone shares. A job counts against its
/// user from enqueue until it is acked or dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_holds_at_most_max_per_user_jobs_until_they_are_acked_or_dead() {
    let server = RedisServer::start();
    let redis = connect(&server.url()).await;
    let config = JobsConfig {
        max_len: 5,
        max_per_user: Some(3),
        max_deliveries: 1,
        ..JobsConfig::default()
    };
    let jobs = Jobs::with_config(redis.clone(), "shared", config).unwrap();
    let counted = |user: &'static str| {
        let redis = redis.clone();
        async move {
            redis
                .query::<Option<u64>>(
                    redis_ssot::redis::cmd("HGET")
                        .arg("ssot:{jobs:shared}:users")
                        .arg(user),
                )
                .await
                .unwrap()
                .unwrap_or(0)
        }
    };

    for key in ["h1", "h2", "h3"] {
        jobs.enqueue(job("hog", Some(key))).await.unwrap();
    }
    let refused = jobs.enqueue(job("hog", Some("h4"))).await;
    assert!(user_full(&refused), "{refused:?}");
    let err = refused.unwrap_err();
    assert!(!err.is_transient(), "not a Redis fault");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert!(user_full(&jobs.enqueue(job("hog", None)).await));
    // A retry of an accepted message still gets its job.
    assert!(
        jobs.enqueue(job("hog", Some("h1")))
            .await
            .unwrap()
            .duplicate
    );
    assert_eq!(counted("hog").await, 3);
    // The backlog (5) still has room for others.
    jobs.enqueue(job("calm", Some("c1"))).await.unwrap();
    assert_eq!(counted("calm").await, 1);

    // Claimed jobs still count: they are in flight.
    let claimed = jobs.claim("c", 10, Duration::ZERO).await.unwrap();
    assert_eq!(claimed.len(), 4);
    assert!(user_full(&jobs.enqueue(job("hog", Some("h4"))).await));
    // An ack frees one slot, once: acking again frees nothing more.
    assert!(jobs.ack(&claimed[0]).await.unwrap());
    assert!(!jobs.ack(&claimed[0]).await.unwrap());
    assert_eq!(counted("hog").await, 2);
    jobs.enqueue(job("hog", Some("h4"))).await.unwrap();
    assert!(user_full(&jobs.enqueue(job("hog", Some("h5"))).await));
    // A dead letter frees one slot too (one delivery allowed, so the first failure buries).
    let outcome = jobs.fail(&claimed[1], "boom").await.unwrap();
    assert!(
        matches!(
            outcome,
            redis_ssot::stores::jobs::FailOutcome::DeadLettered(_)
        ),
        "{outcome:?}"
    );
    assert_eq!(counted("hog").await, 2);
    jobs.enqueue(job("hog", Some("h5"))).await.unwrap();
    // Everything acked: no count is left behind.
    let mut rest = jobs.claim("c", 10, Duration::ZERO).await.unwrap();
    rest.extend(claimed.into_iter().skip(2));
    for job in &rest {
        assert!(jobs.ack(job).await.unwrap());
    }
    let left: u64 = redis
        .query(redis_ssot::redis::cmd("HLEN").arg("ssot:{jobs:shared}:users"))
        .await
        .unwrap();
    assert_eq!(left, 0, "counts of users without jobs are removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_of_one_user_never_overshoot_their_bound() {
    let server = RedisServer::start();
    let redis = connect(&server.url()).await;
    let config = JobsConfig {
        max_per_user: Some(7),
        ..JobsConfig::default()
    };
    let jobs = Jobs::with_config(redis.clone(), "race-user", config).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..60 {
        let jobs = jobs.clone();
        tasks.spawn(async move { jobs.enqueue(job("one", Some(&format!("k{i}")))).await });
    }
    let (mut ok, mut full) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::UserQueueFull { .. }) => full += 1,
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!((ok, full), (7, 53));
}

#[tokio::test]
async fn a_zero_bound_per_user_is_refused() {
    let server = RedisServer::start();
    let redis = connect(&server.url()).await;
    let config = JobsConfig {
        max_per_user: Some(0),
        ..JobsConfig::default()
    };
    let err = Jobs::with_config(redis.clone(), "zero", config).unwrap_err();
    assert!(err.to_string().contains("max_per_user"), "{err}");
}
