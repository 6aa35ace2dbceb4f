//! Issue 10, Must show "Worker on a Cluster": a partitioned queue on 3 masters with a replica
//! each, two workers running its jobs, and the master of a partition SIGKILLed mid-run. Every
//! job then completes exactly once, or is dead-lettered with its reason.

use std::collections::BTreeMap;
use std::time::Duration;

use redis_ssot::UserId;
use redis_ssot::stores::jobs::{Jobs, JobsConfig, NewJob};
use serde_json::json;
use ssot_testkit::RedisCluster;

use crate::support::*;

/// Partitions of the `agent` queue: their hash tags cover all three masters.
const PARTITIONS: u32 = 6;
const USERS: usize = 24;
const PER_USER: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_while_jobs_run_loses_and_repeats_no_job() {
    let mut cluster = tokio::task::spawn_blocking(|| RedisCluster::with(3, 1))
        .await
        .unwrap();
    let url = cluster.cluster_url();
    let redis = manager(&url).await;
    let config = JobsConfig {
        partitions: PARTITIONS,
        ..JobsConfig::default()
    };
    let jobs = Jobs::with_config(redis.clone(), ssot_worker::AGENT_QUEUE, config).unwrap();

    // The victim masters partition 0 of the queue and some users' event streams.
    let victim =
        cluster.master_of_slot(cluster.key_slot(&format!("{{jobs:{}}}", ssot_worker::AGENT_QUEUE)));
    let mut sent = Vec::new();
    for m in 0..PER_USER {
        for u in 0..USERS {
            let user = format!("cw{u}");
            let message_id = format!("{user}-m{m}");
            let job = jobs
                .enqueue(NewJob {
                    user: user.parse::<UserId>().unwrap(),
                    kind: "chat".into(),
                    payload: json!({ "message_id": message_id, "text": "a few words" }),
                    idempotency_key: Some(message_id.clone()),
                })
                .await
                .unwrap();
            sent.push((user, message_id, job.id));
        }
    }
    let victim_users: Vec<String> = (0..USERS)
        .map(|u| format!("cw{u}"))
        .filter(|u| cluster.master_of_slot(cluster.key_slot(&format!("{{u:{u}}}"))) == victim)
        .collect();
    assert!(
        !victim_users.is_empty(),
        "some users' events live on the victim"
    );

    // Runs of four 100 ms steps, eight at a time: the queue lasts well past the kill.
    let mut workers = Vec::new();
    for i in 0..2 {
        let mut opts = options(&format!("cw{i}"));
        opts.queue_partitions = Some(PARTITIONS);
        opts.demo_step_ms = Some(100);
        opts.agent_timeout_ms = Some(3000);
        opts.reclaim_idle_ms = Some(4000);
        workers.push(TestWorker::start(opts, manager(&url).await));
    }
    eventually(Duration::from_secs(10), "runs under way", || async {
        let mut ended_runs = 0;
        for u in 0..USERS {
            ended_runs += try_runs(&redis, &format!("cw{u}"))
                .await
                .map_or(0, |r| r.values().filter(|r| ended(r)).count());
        }
        ended_runs >= 8
    })
    .await;
    // Jobs of the victim's users are still to run or running when it dies.
    let mut unfinished = 0;
    for user in &victim_users {
        let runs = runs(&redis, user).await;
        unfinished += PER_USER - runs.values().filter(|r| ended(r)).count();
    }
    assert!(
        unfinished > 0,
        "the kill comes while the victim's users have jobs"
    );
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.kill_master_and_wait_failover(victim);
        cluster
    })
    .await
    .unwrap();

    // Every job ends: its run completes, or it is dead-lettered.
    let settled = || async {
        let dead = jobs.dead_letters(1000).await.ok()?;
        let mut by_user = BTreeMap::new();
        for u in 0..USERS {
            let user = format!("cw{u}");
            by_user.insert(user.clone(), try_runs(&redis, &user).await.ok()?);
        }
        let all = sent.iter().all(|(user, _, job)| {
            by_user[user].get(job).is_some_and(|r| ended(r))
                || dead.iter().any(|d| &d.job_id == job)
        });
        all.then_some((dead, by_user))
    };
    eventually(Duration::from_secs(30), "every job ended", || async {
        settled().await.is_some()
    })
    .await;
    eventually(Duration::from_secs(10), "nothing pending", || async {
        jobs.pending().await.is_ok_and(|n| n == 0)
    })
    .await;
    // Quiet for longer than a reclaim: no run starts again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (dead, by_user) = settled().await.expect("still settled");
    let mut completed = 0;
    for (user, message_id, job) in &sent {
        let run = by_user[user].get(job);
        match dead.iter().filter(|d| &d.job_id == job).count() {
            0 => {
                let run = run.unwrap_or_else(|| panic!("{job} of {user}: no run"));
                assert_run(run, message_id, "agent_completed");
                completed += 1;
            }
            1 => {
                let letter = dead.iter().find(|d| &d.job_id == job).unwrap();
                assert!(!letter.error.is_empty(), "{letter:?}: no reason");
                // Never completed as well; reported failed at most once.
                if let Some(run) = run {
                    assert!(
                        !names(run).contains(&"agent_completed"),
                        "{job}: dead-lettered and completed: {:?}",
                        names(run)
                    );
                }
            }
            n => panic!("{job} dead-lettered {n} times"),
        }
    }
    println!(
        "{} jobs ({unfinished} of the victim's users unfinished at the kill): {completed} completed once, {} dead-lettered ({:?})",
        sent.len(),
        dead.len(),
        dead.iter().map(|d| &d.error).collect::<Vec<_>>()
    );
    for worker in workers {
        worker.shutdown().await;
    }
    drop(cluster);
}
