//! AgentState, Locks and Jobs against a real server and a real 3-master cluster: each part
//! a test on both, plus a restart of a single server under every store.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis_ssot::stores::agent_state::{AgentState, Versioned};
use redis_ssot::stores::jobs::{FailOutcome, Job, Jobs, JobsConfig, NewJob};
use redis_ssot::stores::lock::{Lease, Locks};
use redis_ssot::{Error, RedisConfig, RedisManager, UserId, UserScope};
use serde_json::json;
use ssot_testkit::RedisServer;

use crate::deployments::{Deployment, parts};
use crate::support::{connect, eventually, fast_config};

/// The test settings with budgets loose enough for 100 concurrent tasks on a small machine:
/// this suite tests the stores, not the breaker.
fn suite_config(url: &str) -> RedisConfig {
    let mut config = fast_config(url);
    config.command_timeout = Duration::from_secs(3);
    config.connect_timeout = Duration::from_secs(3);
    config.blocking_pool_size = 4;
    config.breaker.slow_call_duration = Duration::from_secs(3);
    config
}

/// A manager with [`suite_config`].
async fn suite_manager(url: &str) -> RedisManager {
    RedisManager::connect(suite_config(url))
        .await
        .expect("manager connects")
}

parts! {
    manager, deployment, suite_manager;
    agent_state_cas => agent_state_cas(&manager);
    agent_state_isolation => agent_state_isolation(&manager, &deployment);
    lock_exclusion_and_fencing => lock_exclusion_and_fencing(&manager);
    lock_expired_and_foreign_holders => lock_expired_and_foreign_holders(&manager);
    lock_with_lock => lock_with_lock(&manager);
    jobs_reclaim_after_worker_death => jobs_reclaim_after_worker_death(&manager);
    jobs_idempotent_enqueue => jobs_idempotent_enqueue(&manager);
    jobs_dead_letter_after_failures => jobs_dead_letter_after_failures(&manager);
    jobs_dead_letter_after_repeated_deaths => jobs_dead_letter_after_repeated_deaths(&manager);
}

fn scope(user: &str) -> UserScope {
    UserScope::parse(user).unwrap()
}

/// 100 tasks each add 1 by get + compare-and-set, retrying on conflict: no update is lost,
/// and every put that did not succeed was reported as a conflict.
async fn agent_state_cas(manager: &RedisManager) {
    let state = AgentState::new(manager.clone());
    let user = scope("cas-user");
    assert_eq!(state.put(&user, "run-1", 0, &0u64).await.unwrap(), 1);
    let conflicts = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (state, user, conflicts) = (state.clone(), user.clone(), Arc::clone(&conflicts));
            tokio::spawn(async move {
                let mut attempts = 0u64;
                loop {
                    attempts += 1;
                    let Versioned { version, value } =
                        state.get::<u64>(&user, "run-1").await.unwrap().unwrap();
                    match state.put(&user, "run-1", version, &(value + 1)).await {
                        Ok(new_version) => {
                            assert_eq!(new_version, version + 1);
                            return (new_version, attempts);
                        }
                        Err(Error::Conflict { expected, current }) => {
                            assert_eq!(expected, version);
                            assert!(current > expected, "{current} <= {expected}");
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(err) => panic!("unexpected error: {err}"),
                    }
                }
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    let mut attempts = 0;
    for task in tasks {
        let (version, tries) = task.await.unwrap();
        assert!(versions.insert(version), "version {version} written twice");
        attempts += tries;
    }
    let failed_puts = attempts - 100;
    assert_eq!(versions, (2..=101).collect());
    let end = state.get::<u64>(&user, "run-1").await.unwrap().unwrap();
    assert_eq!(
        end,
        Versioned {
            version: 101,
            value: 100
        }
    );
    assert_eq!(conflicts.load(Ordering::Relaxed), failed_puts);
    eprintln!("cas: 100 increments, {failed_puts} conflicts");
    // Create-only: expected 0 on an existing run conflicts with the stored version.
    let err = state.put(&user, "run-1", 0, &7u64).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: 0,
                current: 101
            }
        ),
        "{err}"
    );
    assert!(state.delete(&user, "run-1").await.unwrap());
    assert_eq!(state.get::<u64>(&user, "run-1").await.unwrap(), None);
}

/// One user's run state is neither readable, writable nor deletable through another's scope.
async fn agent_state_isolation(manager: &RedisManager, deployment: &Deployment) {
    let state = AgentState::new(manager.clone()).with_ttl(Duration::from_secs(60));
    let (alice, bob) = (scope("iso-alice"), scope("iso-alice.b"));
    state
        .put(&alice, "run", 0, &json!({"secret": "alice"}))
        .await
        .unwrap();
    assert_eq!(
        state.get::<serde_json::Value>(&bob, "run").await.unwrap(),
        None
    );
    assert!(!state.delete(&bob, "run").await.unwrap());
    // Bob's first write creates his own state (version 1), it does not conflict with Alice's.
    assert_eq!(
        state
            .put(&bob, "run", 0, &json!({"secret": "bob"}))
            .await
            .unwrap(),
        1
    );
    for hostile in ["*", "run*", "{u:iso-alice}:agent:run", "run x", ""] {
        let err = state
            .get::<serde_json::Value>(&bob, hostile)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{hostile:?}: {err}");
    }
    // A path-like name is only a name, under Bob's prefix; one naming another user's hash
    // tag is refused outright.
    assert!(!state.delete(&bob, "../run").await.unwrap());
    let err = state.delete(&bob, "../../{u:iso-alice}").await.unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    let got = state
        .get::<serde_json::Value>(&alice, "run")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.value, json!({"secret": "alice"}));
    assert_eq!(got.version, 1);
    let keys = deployment.keys("ssot:{u:iso-*");
    let expected: BTreeSet<String> = [
        "ssot:{u:iso-alice}:agent:run",
        "ssot:{u:iso-alice.b}:agent:run",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(keys, expected);
    assert!(state.delete(&bob, "run").await.unwrap());
    let keys = deployment.keys("ssot:{u:iso-*");
    assert_eq!(keys, ["ssot:{u:iso-alice}:agent:run".to_owned()].into());
    // The TTL was set and refreshed by the write.
    let ttl: i64 = manager
        .query(redis_ssot::redis::cmd("PTTL").arg("ssot:{u:iso-alice}:agent:run"))
        .await
        .unwrap();
    assert!((1..=60_000).contains(&ttl), "{ttl}");
}

/// Four contenders: never two holders at once; tokens strictly increase in acquisition order.
async fn lock_exclusion_and_fencing(manager: &RedisManager) {
    let locks = Locks::new(manager.clone());
    let holders = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let contenders: Vec<_> = (0..4)
        .map(|i| {
            let (locks, holders, tokens) =
                (locks.clone(), Arc::clone(&holders), Arc::clone(&tokens));
            tokio::spawn(async move {
                let holder = format!("contender-{i}");
                let mut held = 0;
                while held < 10 {
                    let Some(lease) = locks
                        .acquire("exclusive", &holder, Duration::from_secs(5))
                        .await
                        .unwrap()
                    else {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    };
                    assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                    tokens.lock().unwrap().push(lease.token);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    assert_eq!(holders.fetch_sub(1, Ordering::SeqCst), 1, "two holders");
                    locks.release(lease).await.unwrap();
                    held += 1;
                }
            })
        })
        .collect();
    for contender in contenders {
        contender.await.unwrap();
    }
    let tokens = tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 40);
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "tokens not strictly increasing: {tokens:?}"
    );
}

/// An expired holder cannot renew or release, nor free the next holder's lock; a holder that
/// is not the one in Redis cannot release.
async fn lock_expired_and_foreign_holders(manager: &RedisManager) {
    let locks = Locks::new(manager.clone());
    let mut old = locks
        .acquire("expiring", "worker-a", Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    assert!(
        locks
            .acquire("expiring", "worker-b", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lost = locks
        .renew(&mut old, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(&lost, Error::LockLost { name } if name == "expiring"),
        "{lost}"
    );
    assert!(matches!(
        locks.release(old.clone()).await,
        Err(Error::LockLost { .. })
    ));

    let mut new = locks
        .acquire("expiring", "worker-b", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("free after expiry");
    assert!(new.token > old.token);
    // The old holder, even with the new holder's name or token, cannot touch the new lease.
    let impostors = [
        old.clone(),
        Lease {
            holder: "worker-b".into(),
            ..old.clone()
        },
        Lease {
            holder: "worker-a".into(),
            ..new.clone()
        },
    ];
    for mut impostor in impostors {
        assert!(matches!(
            locks.renew(&mut impostor, Duration::from_secs(5)).await,
            Err(Error::LockLost { .. })
        ));
        assert!(matches!(
            locks.release(impostor).await,
            Err(Error::LockLost { .. })
        ));
    }
    locks.renew(&mut new, Duration::from_secs(5)).await.unwrap();
    locks.release(new.clone()).await.unwrap();
    assert!(matches!(
        locks.release(new).await,
        Err(Error::LockLost { .. })
    ));
    let err = locks
        .acquire("bad name", "x", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
}

/// `with_lock` holds the lock while the work runs, renews it past its lease, releases it
/// after, and cancels the work when the lock is taken over.
async fn lock_with_lock(manager: &RedisManager) {
    let locks = Locks::new(manager.clone());
    let lease = Duration::from_millis(300);
    let outcome = locks
        .with_lock("guarded", "runner", lease, |token| {
            let locks = locks.clone();
            async move {
                // Outlives the lease: only renewal keeps it.
                tokio::time::sleep(Duration::from_millis(700)).await;
                let other = locks.acquire("guarded", "other", lease).await.unwrap();
                assert!(other.is_none(), "lock free while work runs");
                token
            }
        })
        .await
        .unwrap();
    assert!(outcome.is_some());
    let after = locks
        .acquire("guarded", "other", lease)
        .await
        .unwrap()
        .unwrap();
    assert!(after.token > outcome.unwrap());
    // Held elsewhere: the work does not run.
    let skipped = locks
        .with_lock("guarded", "runner", lease, |_| async {
            panic!("ran without the lock")
        })
        .await
        .unwrap();
    assert_eq!(skipped, None::<()>);
    locks.release(after).await.unwrap();

    // Taken over (the lease key replaced under it): the work is cancelled with LockLost.
    let started = Instant::now();
    let result = locks
        .with_lock("guarded", "runner", lease, |_| {
            let manager = manager.clone();
            async move {
                let _: () = manager
                    .query(
                        redis_ssot::redis::cmd("SET")
                            .arg("ssot:{lock:guarded}")
                            .arg("1:thief"),
                    )
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        })
        .await;
    assert!(matches!(result, Err(Error::LockLost { .. })), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

fn new_job(user: &str, key: Option<&str>) -> NewJob {
    NewJob {
        user: UserId::new(user).unwrap(),
        kind: "chat".into(),
        payload: json!({"text": "hello", "from": user}),
        idempotency_key: key.map(str::to_owned),
    }
}

fn jobs(manager: &RedisManager, queue: &str, max_deliveries: u64) -> Jobs {
    let config = JobsConfig {
        max_deliveries,
        ..JobsConfig::default()
    };
    Jobs::with_config(manager.clone(), queue, config).unwrap()
}

/// A worker claims a job and dies (never acks): after the idle bound another consumer
/// reclaims it and completes it.
async fn jobs_reclaim_after_worker_death(manager: &RedisManager) {
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
async fn jobs_idempotent_enqueue(manager: &RedisManager) {
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
async fn jobs_dead_letter_after_failures(manager: &RedisManager) {
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
async fn jobs_dead_letter_after_repeated_deaths(manager: &RedisManager) {
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

/// Every store keeps working through a Redis restart without being rebuilt: while the server
/// is down calls fail fast with a transient error, after the restart they work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_survive_a_restart() {
    let mut server = RedisServer::start();
    let manager = connect(&server.url()).await;
    let state = AgentState::new(manager.clone());
    let locks = Locks::new(manager.clone());
    let queue = Jobs::new(manager.clone(), "restart").unwrap();
    let user = scope("restart-user");
    state.put(&user, "run", 0, &1).await.unwrap();
    let lease = locks
        .acquire("restart", "worker", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    queue
        .enqueue(new_job("restart-user", Some("before")))
        .await
        .unwrap();
    assert_eq!(
        queue
            .claim("worker", 10, Duration::from_millis(100))
            .await
            .unwrap()
            .len(),
        1
    );

    server.kill();
    // Ordinary calls wait at most the command timeout, blocking ones the connect timeout too.
    let config = manager.config();
    let budget = config.command_timeout + config.connect_timeout + Duration::from_millis(200);
    for _ in 0..10 {
        fails_fast("get", budget, state.get::<i32>(&user, "run")).await;
        fails_fast("put", budget, state.put(&user, "run", 1, &2)).await;
        let acquire = locks.acquire("restart-2", "w", Duration::from_secs(1));
        fails_fast("acquire", budget, acquire).await;
        fails_fast("release", budget, locks.release(lease.clone())).await;
        let enqueue = queue.enqueue(new_job("restart-user", None));
        fails_fast("enqueue", budget, enqueue).await;
        let claim = queue.claim("worker", 10, Duration::from_millis(100));
        fails_fast("claim", budget, claim).await;
        let reclaim = queue.reclaim("worker", Duration::ZERO, 10);
        fails_fast("reclaim", budget, reclaim).await;
    }

    server.restart();
    let within = Duration::from_secs(5);
    eventually(within, "agent state works again", || async {
        state.put(&user, "run", 0, &3).await.is_ok()
    })
    .await;
    assert_eq!(
        state.get::<i32>(&user, "run").await.unwrap().unwrap().value,
        3
    );
    eventually(within, "locks work again", || async {
        matches!(
            locks
                .acquire("restart", "worker", Duration::from_secs(5))
                .await,
            Ok(Some(_))
        )
    })
    .await;
    // The lease was lost with the data; the old holder learns it.
    assert!(matches!(
        locks.release(lease).await,
        Err(Error::LockLost { .. })
    ));
    eventually(within, "jobs enqueue again", || async {
        queue
            .enqueue(new_job("restart-user", Some("after")))
            .await
            .is_ok()
    })
    .await;
    // The consumer group was lost too: claim recreates it.
    let claimed = queue
        .claim("worker", 10, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].idempotency_key.as_deref(), Some("after"));
    assert!(queue.ack(&claimed[0]).await.unwrap());
    assert_eq!(
        queue.reclaim("worker", Duration::ZERO, 10).await.unwrap(),
        Default::default()
    );
}

/// Awaits `call`, which must fail with a transient error within `budget`.
async fn fails_fast<T: std::fmt::Debug>(
    what: &str,
    budget: Duration,
    call: impl Future<Output = redis_ssot::Result<T>>,
) {
    let start = Instant::now();
    let result = call.await;
    let took = start.elapsed();
    match result {
        Ok(value) => panic!("{what} succeeded while Redis is down: {value:?}"),
        Err(err) => assert!(err.is_transient(), "{what}: {err}"),
    }
    assert!(took <= budget, "{what} took {took:?}, budget {budget:?}");
}
