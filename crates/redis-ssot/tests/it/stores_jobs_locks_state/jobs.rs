//! Jobs: reclaim after a worker's death, idempotent enqueue, dead letters.

use super::*;

pub(super) fn new_job(user: &str, key: Option<&str>) -> NewJob {
    NewJob {
        user: UserId::new(user).unwrap(),
        kind: "chat".into(),
        payload: json!({"text": "hello", "from": user}),
        idempotency_key: key.map(str::to_owned),
    }
}

pub(super) fn jobs(manager: &RedisManager, queue: &str, max_deliveries: u64) -> Jobs {
    let config = JobsConfig {
        max_deliveries,
        ..JobsConfig::default()
    };
    Jobs::with_config(manager.clone(), queue, config).unwrap()
}

/// A worker claims a job and dies (never acks): after the idle bound another consumer
/// reclaims it and completes it.
pub(super) async fn jobs_reclaim_after_worker_death(manager: &RedisManager) {
    let queue = jobs(manager, "reclaim", 3);
    let enqueued = queue.enqueue(new_job("carol", None)).await.unwrap();
    let claimed = queue
        .claim("worker-a", 10, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let job = &claimed[0];
    assert_eq!(job.id, enqueued.id);
    assert_eq!(job.deliveries, 1);
    assert_eq!(job.user.as_str(), "carol");
    assert_eq!(job.payload, json!({"text": "hello", "from": "carol"}));
    assert_eq!(job.consumer(), "worker-a");
    drop(claimed); // worker-a dies here.

    let idle = Duration::from_millis(300);
    let early = queue.reclaim("worker-b", idle, 10).await.unwrap();
    assert!(
        early.jobs.is_empty(),
        "reclaimed before the idle bound: {early:?}"
    );
    assert!(
        queue
            .claim("worker-b", 10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(queue.pending().await.unwrap(), 1);
    tokio::time::sleep(idle + Duration::from_millis(50)).await;
    let reclaimed = queue.reclaim("worker-b", idle, 10).await.unwrap();
    assert!(reclaimed.dead_lettered.is_empty());
    let [job]: [Job; 1] = reclaimed.jobs.try_into().unwrap();
    assert_eq!(job.id, enqueued.id);
    assert_eq!(job.deliveries, 2);
    assert_eq!(job.consumer(), "worker-b");
    assert!(queue.ack(&job).await.unwrap());
    assert_eq!(queue.pending().await.unwrap(), 0);
    assert!(!queue.ack(&job).await.unwrap(), "acked twice");
    tokio::time::sleep(idle + Duration::from_millis(50)).await;
    assert_eq!(
        queue.reclaim("worker-c", idle, 10).await.unwrap(),
        Default::default()
    );
    assert!(
        queue
            .claim("worker-c", 10, Duration::from_millis(50))
            .await
            .unwrap()
            .is_empty()
    );
}

/// The same idempotency key enqueues once, also under 20 concurrent enqueues; keys are per user.
pub(super) async fn jobs_idempotent_enqueue(manager: &RedisManager) {
    let queue = jobs(manager, "idempotent", 3);
    let first = queue.enqueue(new_job("dave", Some("msg-1"))).await.unwrap();
    assert!(!first.duplicate);
    let again = queue.enqueue(new_job("dave", Some("msg-1"))).await.unwrap();
    assert_eq!(again.id, first.id);
    assert!(again.duplicate);
    // Another user's identical key is another job.
    let other = queue.enqueue(new_job("erin", Some("msg-1"))).await.unwrap();
    assert!(!other.duplicate);
    assert_ne!(other.id, first.id);

    let racers: Vec<_> = (0..20)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(
                async move { queue.enqueue(new_job("dave", Some("msg-2"))).await.unwrap() },
            )
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.push(racer.await.unwrap());
    }
    assert_eq!(
        outcomes.iter().filter(|e| !e.duplicate).count(),
        1,
        "{outcomes:?}"
    );
    let ids: HashSet<_> = outcomes.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids.len(), 1, "{outcomes:?}");

    let claimed = queue
        .claim("worker", 100, Duration::from_millis(200))
        .await
        .unwrap();
    let mut seen: Vec<_> = claimed
        .iter()
        .map(|job| (job.user.to_string(), job.idempotency_key.clone().unwrap()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [("dave", "msg-1"), ("dave", "msg-2"), ("erin", "msg-1")]
            .map(|(u, k)| (u.to_owned(), k.to_owned()))
    );
    for job in &claimed {
        assert!(queue.ack(job).await.unwrap());
    }
    let err = queue
        .enqueue(new_job("dave", Some("bad key*")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
}

/// A job failing `max_deliveries` times lands in the dead-letter stream with its last error,
/// once.
pub(super) async fn jobs_dead_letter_after_failures(manager: &RedisManager) {
    let queue = jobs(manager, "flaky", 3);
    let enqueued = queue
        .enqueue(new_job("frank", Some("job-1")))
        .await
        .unwrap();
    let mut job = queue
        .claim("worker-a", 1, Duration::from_millis(200))
        .await
        .unwrap()
        .remove(0);
    for attempt in 1..=3u64 {
        assert_eq!(job.deliveries, attempt);
        let outcome = queue.fail(&job, &format!("boom {attempt}")).await.unwrap();
        if attempt < 3 {
            assert_eq!(outcome, FailOutcome::Retry);
            // A failed job is up for reclaim at once, whatever the idle bound.
            let consumer = format!("worker-{attempt}");
            let reclaimed = queue
                .reclaim(&consumer, Duration::from_secs(3600), 10)
                .await
                .unwrap();
            let [next]: [Job; 1] = reclaimed.jobs.try_into().unwrap();
            assert_eq!(next.id, enqueued.id);
            // The previous holder's late failure no longer counts.
            assert_eq!(
                queue.fail(&job, "late").await.unwrap(),
                FailOutcome::NotHeld
            );
            job = next;
        } else {
            let FailOutcome::DeadLettered(dead) = outcome else {
                panic!("not dead-lettered: {outcome:?}");
            };
            assert_eq!(dead.job_id, enqueued.id);
            assert_eq!(dead.error, "boom 3");
            assert_eq!(dead.deliveries, 3);
            assert_eq!(dead.user, Some(UserId::new("frank").unwrap()));
            assert_eq!(dead.idempotency_key.as_deref(), Some("job-1"));
        }
    }
    assert_eq!(
        queue.fail(&job, "again").await.unwrap(),
        FailOutcome::NotHeld
    );
    assert!(!queue.ack(&job).await.unwrap());
    assert_eq!(queue.pending().await.unwrap(), 0);
    assert_eq!(
        queue.reclaim("worker-z", Duration::ZERO, 10).await.unwrap(),
        Default::default()
    );
    let dead = queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].job_id, enqueued.id);
    assert_eq!(dead[0].error, "boom 3");
    assert_eq!(dead[0].kind, "chat");
    assert_eq!(dead[0].payload, json!({"text": "hello", "from": "frank"}));
}

/// Jobs whose workers keep dying are dead-lettered once each, by whichever of many racing
/// reclaimers gets there, with the reason.
pub(super) async fn jobs_dead_letter_after_repeated_deaths(manager: &RedisManager) {
    let queue = jobs(manager, "doomed", 2);
    let mut ids = BTreeSet::new();
    for i in 0..20 {
        let key = format!("job-{i}");
        ids.insert(queue.enqueue(new_job("gina", Some(&key))).await.unwrap().id);
    }
    let idle = Duration::from_millis(200);
    // First delivery: the worker dies.
    let claimed = queue
        .claim("worker-a", 100, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 20);
    tokio::time::sleep(idle + Duration::from_millis(50)).await;
    // Second (last) delivery: reclaimed, and the worker dies again.
    let mut redelivered = 0;
    while redelivered < 20 {
        let reclaimed = queue.reclaim("worker-b", idle, 100).await.unwrap();
        assert!(reclaimed.dead_lettered.is_empty());
        assert!(reclaimed.jobs.iter().all(|job| job.deliveries == 2));
        redelivered += reclaimed.jobs.len();
    }
    assert_eq!(redelivered, 20);
    tokio::time::sleep(idle + Duration::from_millis(50)).await;
    // 8 racing reclaimers: each job is dead-lettered exactly once and handed to no one.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut buried = Vec::new();
                for _ in 0..5 {
                    let reclaimed = queue
                        .reclaim(&format!("reaper-{i}"), idle, 7)
                        .await
                        .unwrap();
                    assert!(reclaimed.jobs.is_empty(), "{reclaimed:?}");
                    buried.extend(reclaimed.dead_lettered);
                }
                buried
            })
        })
        .collect();
    let mut buried = Vec::new();
    for racer in racers {
        buried.extend(racer.await.unwrap());
    }
    let buried_ids: BTreeSet<_> = buried.iter().map(|d| d.job_id.clone()).collect();
    assert_eq!(buried.len(), 20, "{buried:?}");
    assert_eq!(buried_ids, ids);
    for dead in &buried {
        assert!(dead.error.starts_with("abandoned"), "{}", dead.error);
        assert_eq!(dead.deliveries, 2);
    }
    let stored = queue.dead_letters(100).await.unwrap();
    assert_eq!(stored.len(), 20);
    assert_eq!(
        stored
            .iter()
            .map(|d| d.job_id.clone())
            .collect::<BTreeSet<_>>(),
        ids
    );
    assert_eq!(queue.pending().await.unwrap(), 0);
}

/// A job's state, read from Redis, follows it: queued → running → failed → running →
/// completed; a job failed on its last delivery is dead; another user cannot read a job's
/// state, and an id that is not `<ms>-<seq>` is refused.
pub(super) async fn jobs_states(manager: &RedisManager) {
    use redis_ssot::stores::jobs::JobState;
    let queue = jobs(manager, "states", 2);
    let dora = UserId::new("dora").unwrap();
    let state = |id: String| {
        let (queue, dora) = (queue.clone(), dora.clone());
        async move { queue.state(&dora, &id).await.unwrap() }
    };
    let first = queue.enqueue(new_job("dora", None)).await.unwrap().id;
    assert_eq!(state(first.clone()).await, Some(JobState::Queued));
    let [job]: [Job; 1] = queue
        .claim("w", 1, Duration::from_millis(200))
        .await
        .unwrap()
        .try_into()
        .unwrap();
    assert!(queue.start(&job).await.unwrap());
    assert_eq!(state(first.clone()).await, Some(JobState::Running));
    assert!(matches!(
        queue.fail(&job, "boom").await.unwrap(),
        FailOutcome::Retry
    ));
    assert_eq!(state(first.clone()).await, Some(JobState::Failed));
    let [job]: [Job; 1] = queue
        .reclaim("w", Duration::from_millis(1), 1)
        .await
        .unwrap()
        .jobs
        .try_into()
        .unwrap();
    assert!(queue.start(&job).await.unwrap());
    assert!(queue.ack(&job).await.unwrap());
    assert_eq!(state(first.clone()).await, Some(JobState::Completed));
    assert!(
        !queue.start(&job).await.unwrap(),
        "a late attempt revives nothing"
    );
    assert_eq!(state(first.clone()).await, Some(JobState::Completed));

    let second = queue.enqueue(new_job("dora", None)).await.unwrap().id;
    for _ in 0..2 {
        let claimed = match queue
            .claim("w", 1, Duration::from_millis(200))
            .await
            .unwrap()
        {
            found if !found.is_empty() => found,
            _ => {
                queue
                    .reclaim("w", Duration::from_millis(1), 1)
                    .await
                    .unwrap()
                    .jobs
            }
        };
        let [job]: [Job; 1] = claimed.try_into().unwrap();
        queue.fail(&job, "boom").await.unwrap();
    }
    assert_eq!(state(second).await, Some(JobState::Dead));

    let other = UserId::new("eve").unwrap();
    assert_eq!(queue.state(&other, &first).await.unwrap(), None);
    assert!(matches!(
        queue.state(&dora, "1-x").await,
        Err(Error::Invalid { .. })
    ));
}
