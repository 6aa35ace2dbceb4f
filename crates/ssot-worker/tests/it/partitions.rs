//! Issue 10 section 4: a partitioned queue on a real 3-master Cluster. Enqueues spread over
//! the masters, each user's jobs stay in one partition in order, two workers consume every
//! partition with one blocking connection each, and every job completes exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use redis_ssot::UserId;
use redis_ssot::stores::chat::{CHAT_QUEUE, ChatJob};
use redis_ssot::stores::jobs::{Jobs, JobsConfig, NewJob};
use ssot_testkit::{RedisCluster, RedisServer};

use crate::support::*;

/// Enough partitions of the `agent` queue that their hash tags cover all three masters.
const PARTITIONS: u32 = 6;
const USERS: usize = 30;
const PER_USER: usize = 2;

/// `cmdstat_<command>` calls on `node` since its last `CONFIG RESETSTAT`.
fn calls(node: &RedisServer, command: &str) -> u64 {
    let prefix = format!("cmdstat_{command}:calls=");
    node.cli(&["INFO", "commandstats"])
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

fn stream_of(partition: u32) -> String {
    match partition {
        0 => format!("ssot:{{jobs:{CHAT_QUEUE}}}:stream"),
        p => format!("ssot:{{jobs:{CHAT_QUEUE}#{p}}}:stream"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_queue_spreads_over_the_masters_and_every_job_runs_once() {
    let cluster = RedisCluster::start();
    let redis = manager(&cluster.cluster_url()).await;
    for node in cluster.nodes() {
        node.cli(&["CONFIG", "RESETSTAT"]);
    }
    let config = JobsConfig {
        partitions: PARTITIONS,
        ..JobsConfig::default()
    };
    let jobs = Jobs::with_config(redis.clone(), CHAT_QUEUE, config).unwrap();

    // Enqueue everything first, as gateways would while no worker runs.
    let mut sent = Vec::new();
    for m in 0..PER_USER {
        for u in 0..USERS {
            let user = format!("pu{u}");
            let message_id = format!("{user}-m{m}");
            let message = ChatJob {
                message_id: message_id.clone(),
                text: format!("{u}+{m}"),
            };
            let id: UserId = user.parse().unwrap();
            let job = jobs.enqueue(NewJob::chat(id, message)).await.unwrap();
            assert!(!job.duplicate);
            sent.push((user, message_id, job.id));
        }
    }

    // Every enqueue reached exactly one master, and every master got some.
    let per_node: Vec<u64> = cluster.nodes().iter().map(|n| calls(n, "xadd")).collect();
    assert_eq!(
        per_node.iter().sum::<u64>(),
        (USERS * PER_USER) as u64,
        "{per_node:?}"
    );
    assert!(
        per_node.iter().all(|&n| n > 0),
        "xadd per master: {per_node:?}"
    );

    // Each user's jobs sit in the user's partition only, in the order they were sent.
    let mut placed: BTreeMap<String, Vec<(u32, String)>> = BTreeMap::new();
    for p in 0..PARTITIONS {
        let entries: Vec<(String, BTreeMap<String, String>)> = redis
            .query(
                redis_ssot::redis::cmd("XRANGE")
                    .arg(stream_of(p))
                    .arg("-")
                    .arg("+"),
            )
            .await
            .unwrap();
        for (_, fields) in entries {
            let payload: serde_json::Value = serde_json::from_str(&fields["payload"]).unwrap();
            let message_id = payload["message_id"].as_str().unwrap().to_owned();
            placed
                .entry(fields["user"].clone())
                .or_default()
                .push((p, message_id));
        }
    }
    assert_eq!(placed.len(), USERS);
    for (user, entries) in &placed {
        let home = jobs.partition_of(&user.parse().unwrap());
        let want: Vec<(u32, String)> = (0..PER_USER)
            .map(|m| (home, format!("{user}-m{m}")))
            .collect();
        assert_eq!(entries, &want, "{user}");
    }
    let used: BTreeSet<u32> = placed.values().map(|e| e[0].0).collect();
    assert!(used.len() > 1, "users spread over partitions: {used:?}");

    // Two workers consume every partition.
    let mut workers = Vec::new();
    for i in 0..2 {
        let mut opts = options(&format!("pw{i}"));
        opts.queue_partitions = Some(PARTITIONS);
        workers.push(TestWorker::start(
            opts,
            manager(&cluster.cluster_url()).await,
        ));
    }
    for (user, message_id, job) in &sent {
        let run = ended_run(&redis, user, job).await;
        assert_run(&run, message_id, "agent_completed");
    }
    for (user, _, _) in sent.iter().take(USERS) {
        let runs = runs(&redis, user).await;
        assert_eq!(runs.len(), PER_USER, "{user}: one run per message");
    }
    eventually(Duration::from_secs(5), "all acked", || async {
        jobs.pending().await.unwrap() == 0
    })
    .await;
    assert!(jobs.dead_letters(10).await.unwrap().is_empty());
    for p in 0..PARTITIONS {
        let len: u64 = redis
            .query(redis_ssot::redis::cmd("XLEN").arg(stream_of(p)))
            .await
            .unwrap();
        assert_eq!(len, 0, "partition {p} drained");
    }

    // Six partitions, yet each worker blocks on one connection per master at most.
    for node in cluster.nodes() {
        let blocking = node
            .client_list()
            .into_iter()
            .filter(|c| c.name.ends_with(":blocking"))
            .count();
        assert!(
            blocking <= 2,
            "{blocking} blocking connections on {}",
            node.port()
        );
    }
    for worker in workers {
        worker.shutdown().await;
    }
}
