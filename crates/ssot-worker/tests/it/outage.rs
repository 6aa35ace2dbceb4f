//! Redis gone for seconds under working workers — killed then restarted on its port, then cut
//! off by a blackholing proxy: they wait without spinning, come back and finish every job once.

use std::time::{Duration, Instant};

use ssot_testkit::{FaultProxy, RedisServer};

use crate::support::*;

/// How long each outage lasts.
const OUTAGE: Duration = Duration::from_secs(4);
/// Most of one core the whole test process (two workers, their managers, the proxy, the test's
/// own manager) may use while Redis is away; a retry loop without backoff takes all of one.
const MAX_CPU_SHARE: f64 = 0.2;

/// CPU time (user + system) this process has used so far, from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // After the command name's ")": field 3 (state) first, so utime (14) and stime (15) are
    // the 12th and 13th.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf runs");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Waits out `outage` and returns the share of one core the process used meanwhile.
async fn cpu_share_during(outage: Duration) -> f64 {
    let (cpu, wall) = (cpu_time(), Instant::now());
    tokio::time::sleep(outage).await;
    (cpu_time() - cpu).as_secs_f64() / wall.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_wait_out_outages_without_spinning_and_finish_every_job_once() {
    const USERS: [&str; 3] = ["r1", "r2", "r3"];
    const PER_USER: usize = 8;
    let mut server = RedisServer::builder().aof(true).start();
    let proxy = FaultProxy::start(server.addr());
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
    // Runs of four 100 ms steps, four at a time: the queue lasts through both outages.
    let mut opts = options("o1");
    opts.demo_step_ms = Some(100);
    opts.concurrency = Some(2);
    opts.agent_timeout_ms = Some(3000);
    opts.reclaim_idle_ms = Some(4000);
    // A job cut off by both outages is retried, not dead-lettered.
    opts.max_deliveries = Some(10);
    let mut opts2 = opts.clone();
    opts2.consumer = Some("o2".into());
    let workers = [
        TestWorker::start(opts, manager(&proxy.url()).await),
        TestWorker::start(opts2, manager(&proxy.url()).await),
    ];
    // Runs ended so far; None while Redis does not answer (e.g. still loading after restart).
    let ended_count = |redis: redis_ssot::RedisManager| async move {
        let mut n = 0;
        for user in USERS {
            n += try_runs(&redis, user)
                .await
                .ok()?
                .values()
                .filter(|r| ended(r))
                .count();
        }
        Some(n)
    };
    let progress = |at_least: usize| {
        let redis = redis.clone();
        async move {
            eventually(
                Duration::from_secs(30),
                &format!("{at_least} runs ended"),
                || async { ended_count(redis.clone()).await >= Some(at_least) },
            )
            .await;
        }
    };
    progress(4).await;

    // Redis killed, restarted on the same port after the outage.
    let before = ended_count(redis.clone()).await.unwrap();
    server.kill();
    let killed = cpu_share_during(OUTAGE).await;
    server.restart();
    progress(before + 4).await;

    // Redis cut off: connections hang, nothing is answered.
    let before = ended_count(redis.clone()).await.unwrap();
    assert!(before < sent.len(), "jobs left for the second outage");
    proxy.blackhole();
    let blackholed = cpu_share_during(OUTAGE).await;
    proxy.pass();

    assert!(
        killed < MAX_CPU_SHARE && blackholed < MAX_CPU_SHARE,
        "CPU while Redis was away: {:.1} % of a core killed, {:.1} % blackholed",
        killed * 100.0,
        blackholed * 100.0
    );
    progress(sent.len()).await;
    // Time for a duplicate, if there were one, to be appended.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (user, message_id, job) in &sent {
        let run = &runs(&redis, user).await[job];
        assert_run(run, message_id, "agent_completed");
        assert_eq!(run.len(), 6, "{run:?}");
    }
    for user in USERS {
        assert_eq!(
            runs(&redis, user).await.len(),
            PER_USER,
            "{user}: one run a job"
        );
    }
    for w in workers {
        w.shutdown().await;
    }
    assert_eq!(jobs.pending().await.unwrap(), 0);
    assert!(jobs.dead_letters(10).await.unwrap().is_empty());
}
