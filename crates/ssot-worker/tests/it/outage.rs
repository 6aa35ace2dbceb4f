//! Redis killed and restarted under workers: they pause, come back and finish every job once.

use std::time::Duration;

use ssot_testkit::RedisServer;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_survive_a_redis_restart_and_finish_queued_jobs() {
    const USERS: [&str; 3] = ["r1", "r2", "r3"];
    const PER_USER: usize = 10;
    let mut server = RedisServer::builder().aof(true).start();
    let (redis, jobs) = setup(&server).await;
    let mut sent = Vec::new();
    for i in 0..PER_USER {
        for user in USERS {
            let message_id = format!("{user}-{i}");
            sent.push((
                user,
                message_id.clone(),
                send(&jobs, user, &message_id, "some words here").await,
            ));
        }
    }
    let mut opts = options("o1");
    opts.demo_step_ms = Some(40);
    opts.concurrency = Some(2);
    opts.agent_timeout_ms = Some(3000);
    opts.reclaim_idle_ms = Some(4000);
    let mut opts2 = opts.clone();
    opts2.consumer = Some("o2".into());
    let workers = [
        TestWorker::start(opts, manager(&server.url()).await),
        TestWorker::start(opts2, manager(&server.url()).await),
    ];
    let ended_count = |redis: redis_ssot::RedisManager| async move {
        let mut n = 0;
        for user in USERS {
            n += runs(&redis, user)
                .await
                .values()
                .filter(|r| ended(r))
                .count();
        }
        n
    };
    eventually(Duration::from_secs(10), "some runs ended", || async {
        ended_count(redis.clone()).await >= 4
    })
    .await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.restart();
    eventually(Duration::from_secs(25), "every run ended", || async {
        redis.wait_ready(Duration::from_millis(500)).await
            && ended_count(redis.clone()).await == sent.len()
    })
    .await;
    for (user, message_id, job) in &sent {
        let run = &runs(&redis, user).await[job];
        assert_run(run, message_id, "agent_completed");
        assert_eq!(run.len(), 6, "{run:?}");
    }
    for w in workers {
        w.shutdown().await;
    }
    assert_eq!(jobs.pending().await.unwrap(), 0);
}
