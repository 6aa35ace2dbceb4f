//! Issue 10 section 4 at the store level, on a real 3-master Cluster: idempotency, claim,
//! reclaim, failure and dead letters each work per partition, and a job never leaves its
//! user's partition.

use std::collections::BTreeSet;
use std::time::Duration;

use redis_ssot::UserId;
use redis_ssot::stores::jobs::{FailOutcome, Jobs, JobsConfig, NewJob};
use serde_json::json;
use ssot_testkit::RedisCluster;

use crate::support::connect;

fn job(user: &str, key: &str) -> NewJob {
    NewJob {
        user: user.parse().unwrap(),
        kind: "chat".into(),
        payload: json!({ "message_id": key, "text": "hi" }),
        idempotency_key: Some(key.to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reclaim_failure_dead_letters_and_idempotency_work_per_partition() {
    let cluster = RedisCluster::start();
    let redis = connect(&cluster.cluster_url()).await;
    let config = JobsConfig {
        partitions: 4,
        max_deliveries: 2,
        ..JobsConfig::default()
    };
    let jobs = Jobs::with_config(redis, "pq", config).unwrap();
    let users: Vec<String> = (0..12).map(|i| format!("pp{i}")).collect();
    let homes: BTreeSet<u32> = users
        .iter()
        .map(|u| jobs.partition_of(&u.parse::<UserId>().unwrap()))
        .collect();
    assert_eq!(homes.len(), 4, "the users cover every partition");

    let mut ids = BTreeSet::new();
    for user in &users {
        let first = jobs.enqueue(job(user, "k")).await.unwrap();
        assert!(!first.duplicate);
        // The same key again: the marker lives in the user's partition.
        let again = jobs.enqueue(job(user, "k")).await.unwrap();
        assert_eq!((again.duplicate, &again.id), (true, &first.id));
        // Ids are unique within a partition (two streams may mint the same one).
        let home = jobs.partition_of(&user.parse::<UserId>().unwrap());
        ids.insert((home, first.id));
    }
    assert_eq!(ids.len(), users.len());

    // One consumer takes everything over several claims and dies holding it.
    let mut held = Vec::new();
    while held.len() < users.len() {
        let batch = jobs
            .claim("dies", 5, Duration::from_millis(50))
            .await
            .unwrap();
        assert!(!batch.is_empty() || held.len() == users.len());
        held.extend(batch);
    }
    assert_eq!(held.len(), users.len());
    for j in &held {
        assert_eq!(j.partition(), jobs.partition_of(&j.user), "{}", j.user);
    }
    assert_eq!(jobs.pending().await.unwrap(), users.len() as u64);
    assert!(
        jobs.claim("other", 10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );

    // Another consumer reclaims them all, from every partition.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut reclaimed = Vec::new();
    for _ in 0..10 {
        let r = jobs
            .reclaim("heir", Duration::from_millis(50), 100)
            .await
            .unwrap();
        assert!(r.dead_lettered.is_empty());
        reclaimed.extend(r.jobs);
        if reclaimed.len() == users.len() {
            break;
        }
    }
    let got: BTreeSet<(u32, String)> = reclaimed
        .iter()
        .map(|j| (j.partition(), j.id.clone()))
        .collect();
    assert_eq!(got, ids);
    assert!(
        reclaimed
            .iter()
            .all(|j| j.deliveries == 2 && j.consumer() == "heir")
    );

    // Their second delivery fails: each moves to its own partition's dead letters.
    for j in &reclaimed {
        match jobs.fail(j, "no luck").await.unwrap() {
            FailOutcome::DeadLettered(dead) => {
                assert_eq!(dead.partition, j.partition());
                assert_eq!(dead.job_id, j.id);
            }
            other => panic!("{other:?}"),
        }
    }
    let dead = jobs.dead_letters(100).await.unwrap();
    assert_eq!(dead.len(), users.len());
    let dead_ids: BTreeSet<(u32, String)> = dead
        .iter()
        .map(|d| (d.partition, d.job_id.clone()))
        .collect();
    assert_eq!(dead_ids, ids);
    let partitions: BTreeSet<u32> = dead.iter().map(|d| d.partition).collect();
    assert_eq!(partitions, homes);
    assert_eq!(jobs.dead_letters(3).await.unwrap(), dead[..3]);
    assert_eq!(jobs.pending().await.unwrap(), 0);
}
