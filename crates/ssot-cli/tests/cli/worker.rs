//! `ssot worker` as a process: SIGTERM with jobs in flight, and three workers sharing one
//! scheduled job while one of them is SIGKILLed.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis_ssot::stores::events::{EventId, Events};
use redis_ssot::stores::jobs::{Jobs, NewJob};
use redis_ssot::{RedisManager, RedisOptions, UserScope};
use ssot_testkit::RedisServer;
use ssot_worker::{AGENT_QUEUE, Heartbeat};

use crate::pipeline::{Ev, Seen, assert_complete_runs};

/// A running `ssot worker`; killed on drop.
pub(crate) struct WorkerProcess(Child);

impl WorkerProcess {
    pub(crate) fn start(redis_url: &str, config: &Path) -> WorkerProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_ssot"))
            .args([
                "--config",
                config.to_str().unwrap(),
                "worker",
                "--redis",
                redis_url,
            ])
            .env_remove("REDIS_URL")
            .env("SSOT_LOG", "warn")
            .env("SSOT_REDIS_HEALTH_INTERVAL_MS", "100")
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ssot worker starts");
        WorkerProcess(child)
    }

    pub(crate) fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Sends SIGTERM and waits for the exit; the exit code and how long it took.
    fn terminate(&mut self, within: Duration) -> (Option<i32>, Duration) {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return (status.code(), started.elapsed());
            }
            assert!(
                started.elapsed() < within,
                "ssot worker did not exit within {within:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A config file holding `toml`.
pub(crate) fn config_file(toml: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), toml).unwrap();
    file
}

async fn manager(url: &str) -> RedisManager {
    let config = RedisOptions::from_toml(&format!("url = \"{url}\"\napp = \"cli-test\""))
        .unwrap()
        .resolve()
        .unwrap();
    RedisManager::connect(config).await.unwrap()
}

/// Enqueues a chat message the way the gateway does; returns the job id.
async fn send(jobs: &Jobs, user: &str, message_id: &str) -> String {
    jobs.enqueue(NewJob {
        user: user.parse().unwrap(),
        kind: "chat".into(),
        payload: serde_json::json!({ "message_id": message_id, "text": "count these words" }),
        idempotency_key: Some(message_id.to_owned()),
    })
    .await
    .unwrap()
    .id
}

/// `user`'s event stream as a socket resuming from the start would see it.
async fn stream(redis: &RedisManager, user: &str) -> Seen {
    let replay = Events::new(redis.clone())
        .replay_after(&UserScope::parse(user).unwrap(), EventId::ZERO, 10_000)
        .await
        .unwrap();
    let mut seen = Seen::default();
    for e in replay.events {
        let data: serde_json::Value = serde_json::from_str(e.data.get()).unwrap();
        seen.events.push((
            data["job"].as_str().unwrap().to_owned(),
            Ev {
                id: e.id.to_string(),
                seq: data["seq"].as_u64().unwrap(),
                name: e.name,
                message_id: data["message_id"].as_str().unwrap().to_owned(),
            },
        ));
    }
    seen
}

/// Polls until each user's stream holds at least `n` events named `name`.
async fn wait_events(redis: &RedisManager, users: &[String], name: &str, n: usize) {
    let start = Instant::now();
    loop {
        let mut done = true;
        for user in users {
            let seen = stream(redis, user).await;
            done &= seen.events.iter().filter(|(_, e)| e.name == name).count() >= n;
        }
        if done {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not every user has {n} {name}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Starts a worker with `config`, sends each user the job `<user>-<suffix>` and SIGTERMs the
/// worker once each user's stream shows `runs` runs started; asserts exit code 0 and returns
/// how long the exit took.
async fn sigterm_mid_run(
    server: &RedisServer,
    redis: &RedisManager,
    users: &[String],
    config: &tempfile::NamedTempFile,
    suffix: &str,
    runs: usize,
) -> Duration {
    let jobs = Jobs::new(redis.clone(), AGENT_QUEUE).unwrap();
    let mut process = WorkerProcess::start(&server.url(), config.path());
    for user in users {
        send(&jobs, user, &format!("{user}-{suffix}")).await;
    }
    wait_events(redis, users, "agent_started", runs).await;
    let (code, took) = process.terminate(Duration::from_secs(10));
    assert_eq!(code, Some(0), "exit code after SIGTERM");
    took
}

/// SIGTERM with runs in flight: with a drain budget longer than a run they finish, with a
/// shorter one they are handed back unacknowledged; either way the process exits 0, and once
/// another worker has run, every job completed exactly once with no event twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_or_hands_back_in_flight_jobs_and_exits_0() {
    let server = RedisServer::start();
    let redis = manager(&server.url()).await;
    let jobs = Jobs::new(redis.clone(), AGENT_QUEUE).unwrap();
    // Runs take four 250 ms steps; a taken-over job moves after 3.5 s idle.
    let worker = |consumer: &str, drain_ms: u64| {
        config_file(&format!(
            "[worker]\nconsumer = \"{consumer}\"\nconcurrency = 4\ndemo-step-ms = 250\n\
             agent-timeout-ms = 2500\nreclaim-idle-ms = 3500\ndrain-timeout-ms = {drain_ms}\n"
        ))
    };
    let users: Vec<String> = (0..4).map(|u| format!("term{u}")).collect();

    // Drain budget (5 s) above a run (1 s): the runs in flight finish, then exit 0.
    let took = sigterm_mid_run(
        &server,
        &redis,
        &users,
        &worker("patient", 5000),
        "finish",
        1,
    )
    .await;
    assert!(took < Duration::from_secs(3), "drained in {took:?}");
    for user in &users {
        let seen = stream(&redis, user).await;
        assert_complete_runs(user, &[&seen], &[format!("{user}-finish")]);
    }
    assert_eq!(jobs.pending().await.unwrap(), 0, "finished runs are acked");

    // Drain budget (200 ms) below a run: handed back unacknowledged, exit 0 all the same.
    let took = sigterm_mid_run(
        &server,
        &redis,
        &users,
        &worker("hasty", 200),
        "hand-back",
        2,
    )
    .await;
    assert!(
        took < Duration::from_millis(1500),
        "handed back in {took:?}"
    );
    for user in &users {
        let seen = stream(&redis, user).await;
        let names: Vec<&str> = seen.events.iter().map(|(_, e)| e.name.as_str()).collect();
        assert_eq!(
            names.iter().filter(|n| **n == "agent_completed").count(),
            1,
            "{user}: the handed-back run did not end: {names:?}"
        );
        assert!(!names.contains(&"agent_failed"), "{user}: {names:?}");
    }
    assert_eq!(jobs.pending().await.unwrap(), 4, "handed back, not acked");

    let heir_config = worker("heir", 5000);
    let mut heir = WorkerProcess::start(&server.url(), heir_config.path());
    wait_events(&redis, &users, "agent_completed", 2).await;
    // Time for a duplicate, if there were one, to be appended.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for user in &users {
        let seen = stream(&redis, user).await;
        assert_complete_runs(
            user,
            &[&seen],
            &[format!("{user}-finish"), format!("{user}-hand-back")],
        );
    }
    assert_eq!(jobs.pending().await.unwrap(), 0);
    assert!(jobs.dead_letters(10).await.unwrap().is_empty());
    assert_eq!(heir.terminate(Duration::from_secs(10)).0, Some(0));
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn sleep_until_unix_ms(at: u64) {
    let now = unix_ms();
    if at > now {
        tokio::time::sleep(Duration::from_millis(at - now)).await;
    }
}

/// Three workers with the heartbeat every second for 30 s, one SIGKILLed half way: about 30
/// runs, one per tick, fencing tokens strictly increasing in tick order, and the lock moves
/// on to another worker at the next tick. Checked from the heartbeat's record, which also
/// holds any run it refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_run_a_job_every_second_once_per_tick() {
    const TICKS: u64 = 30;
    let server = RedisServer::start();
    let redis = manager(&server.url()).await;
    let heartbeat = Heartbeat::new(redis.clone());
    let names = ["sched-a", "sched-b", "sched-c"];
    let configs = names.map(|name| {
        config_file(&format!(
            "[worker]\nconsumer = \"{name}\"\n[[worker.schedule]]\nname = \"heartbeat\"\nevery-ms = 1000\n"
        ))
    });
    let mut workers: Vec<Option<WorkerProcess>> = configs
        .iter()
        .map(|c| Some(WorkerProcess::start(&server.url(), c.path())))
        .collect();

    let start = Instant::now();
    let first = loop {
        if let Some(run) = heartbeat.runs("heartbeat", 1).await.unwrap().pop() {
            break run.tick;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no first run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Half way, just after a tick ran: SIGKILL the worker that ran it, lease still held.
    sleep_until_unix_ms((first + TICKS / 2) * 1000 + 300).await;
    let latest = heartbeat.runs("heartbeat", 1000).await.unwrap();
    let victim = latest.last().unwrap().clone();
    let index = names.iter().position(|n| *n == victim.worker).unwrap();
    workers[index].take().unwrap().kill9();

    // Ticks first ..= first + 29 belong to the 30 s; stop as tick first + 30 begins.
    sleep_until_unix_ms((first + TICKS) * 1000).await;
    for worker in workers.iter_mut().flatten() {
        assert_eq!(worker.terminate(Duration::from_secs(10)).0, Some(0));
    }

    let runs = heartbeat.runs("heartbeat", 1000).await.unwrap();
    let summary: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{}:{}:{}{}",
                r.tick,
                r.token,
                r.worker,
                if r.refused { "!" } else { "" }
            )
        })
        .collect();
    assert!(
        runs.iter().all(|r| !r.refused),
        "a run was refused: {summary:?}"
    );
    let ticks: HashSet<u64> = runs.iter().map(|r| r.tick).collect();
    assert_eq!(ticks.len(), runs.len(), "a tick ran twice: {summary:?}");
    assert!(
        (TICKS as usize - 1..=TICKS as usize + 1).contains(&runs.len()),
        "{} runs in {TICKS} s: {summary:?}",
        runs.len()
    );
    let mut by_tick = runs.clone();
    by_tick.sort_by_key(|r| r.tick);
    assert!(
        by_tick.windows(2).all(|w| w[0].token < w[1].token),
        "tokens increase with the tick: {summary:?}"
    );
    assert!(
        runs.iter()
            .all(|r| r.tick <= victim.tick || r.worker != victim.worker),
        "{} ran after it was killed: {summary:?}",
        victim.worker
    );
    // The victim's lease ends before the next tick starts (`lease < every`), so the next
    // tick is taken by a survivor: exactly tick + 1, not a later one.
    assert!(
        runs.iter()
            .any(|r| r.tick == victim.tick + 1 && r.worker != victim.worker),
        "the lock moved on after {} was killed at tick {}: {summary:?}",
        victim.worker,
        victim.tick
    );
}
