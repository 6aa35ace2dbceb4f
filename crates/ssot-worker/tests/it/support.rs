//! Test harness: managers with fast budgets, in-process workers that can be stopped or
//! killed, enqueueing, and checks of what reached each user's event stream.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use redis_ssot::stores::events::{EventId, Events};
use redis_ssot::stores::jobs::{Jobs, NewJob};
use redis_ssot::{RedisManager, RedisOptions, UserScope};
use serde_json::{Value, json};
use ssot_testkit::RedisServer;
use ssot_worker::{Agent, Worker, WorkerOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) use ssot_testkit::eventually;

/// Manager settings that notice faults quickly: the kit's, with the breaker open for 500 ms.
pub(crate) async fn manager(url: &str) -> RedisManager {
    let mut options =
        RedisOptions::from_toml(&ssot_testkit::fast_manager_toml(url, "worker-test")).unwrap();
    options.breaker.as_mut().unwrap().open_duration_ms = Some(500);
    RedisManager::connect(options.resolve().unwrap())
        .await
        .expect("manager connects")
}

/// Options with short bounds: runs end within 1.5 s, dead workers' jobs move after 2.5 s.
pub(crate) fn options(consumer: &str) -> WorkerOptions {
    WorkerOptions {
        consumer: Some(consumer.to_owned()),
        concurrency: Some(4),
        agent_timeout_ms: Some(1500),
        reclaim_idle_ms: Some(2500),
        max_deliveries: Some(3),
        drain_timeout_ms: Some(2000),
        tool_rate: Some(100),
        tool_burst: Some(100),
        ..WorkerOptions::default()
    }
}

/// An in-process worker.
pub(crate) struct TestWorker {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ssot_worker::WorkerError>>>,
}

impl TestWorker {
    pub(crate) fn start(options: WorkerOptions, manager: RedisManager) -> TestWorker {
        TestWorker::start_with(options, manager, None)
    }

    pub(crate) fn start_with(
        options: WorkerOptions,
        manager: RedisManager,
        agent: Option<Arc<dyn Agent>>,
    ) -> TestWorker {
        let mut worker = Worker::new(options.resolve().unwrap(), manager);
        if let Some(agent) = agent {
            worker = worker.with_agent(agent);
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(worker.run(async {
            let _ = stopped.await;
        }));
        TestWorker {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful shutdown; returns how long `run` took to return.
    pub(crate) async fn shutdown(mut self) -> Duration {
        let started = tokio::time::Instant::now();
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task.take().unwrap())
            .await
            .expect("worker returns after shutdown")
            .expect("worker task did not panic")
            .expect("worker returns Ok");
        started.elapsed()
    }

    /// Kills the worker: its tasks are dropped wherever they are, nothing is acked or failed.
    pub(crate) async fn kill(mut self) {
        let task = self.task.take().unwrap();
        task.abort();
        let _ = task.await;
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Enqueues a chat message the way the gateway does; returns the job id.
pub(crate) async fn send(jobs: &Jobs, user: &str, message_id: &str, text: &str) -> String {
    jobs.enqueue(NewJob {
        user: user.parse().unwrap(),
        kind: "chat".into(),
        payload: json!({ "message_id": message_id, "text": text }),
        idempotency_key: Some(message_id.to_owned()),
    })
    .await
    .unwrap()
    .id
}

/// One stored event: name and data.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) name: String,
    pub(crate) data: Value,
}

/// Everything in `user`'s event stream, oldest first.
pub(crate) async fn events(manager: &RedisManager, user: &str) -> Vec<Seen> {
    try_events(manager, user).await.unwrap()
}

/// [`events`], or the error while Redis is not (yet) answering.
pub(crate) async fn try_events(
    manager: &RedisManager,
    user: &str,
) -> redis_ssot::Result<Vec<Seen>> {
    let replay = Events::new(manager.clone())
        .replay_after(&UserScope::parse(user).unwrap(), EventId::ZERO, 100_000)
        .await?;
    Ok(replay
        .events
        .into_iter()
        .map(|e| Seen {
            name: e.name,
            data: serde_json::from_str(e.data.get()).unwrap(),
        })
        .collect())
}

/// Events of `user` grouped by job id, in stream order.
pub(crate) async fn runs(manager: &RedisManager, user: &str) -> BTreeMap<String, Vec<Seen>> {
    try_runs(manager, user).await.unwrap()
}

/// [`runs`], or the error while Redis is not (yet) answering.
pub(crate) async fn try_runs(
    manager: &RedisManager,
    user: &str,
) -> redis_ssot::Result<BTreeMap<String, Vec<Seen>>> {
    let mut by_job: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    for e in try_events(manager, user).await? {
        let job = e.data["job"]
            .as_str()
            .expect("event names its job")
            .to_owned();
        by_job.entry(job).or_default().push(e);
    }
    Ok(by_job)
}

/// True when the run has its end event.
pub(crate) fn ended(run: &[Seen]) -> bool {
    run.iter()
        .any(|e| e.name == "agent_completed" || e.name == "agent_failed")
}

/// Asserts one complete, ordered run: `agent_started` first, sequence numbers 1..=n in order
/// (so no (job, seq) twice and no gap), exactly one end event, last, named `end`.
pub(crate) fn assert_run(run: &[Seen], message_id: &str, end: &str) {
    let names = names(run);
    assert_eq!(names.first(), Some(&"agent_started"), "{names:?}");
    assert_eq!(names.last(), Some(&end), "{names:?}");
    let ends = names
        .iter()
        .filter(|n| **n == "agent_completed" || **n == "agent_failed")
        .count();
    assert_eq!(ends, 1, "{names:?}");
    let seqs: Vec<u64> = run
        .iter()
        .map(|e| e.data["seq"].as_u64().unwrap())
        .collect();
    let contiguous: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, contiguous, "seq not 1..=n: {names:?}");
    for e in run {
        assert_eq!(e.data["message_id"], message_id, "{e:?}");
    }
}

/// The event names of a run.
pub(crate) fn names(run: &[Seen]) -> Vec<&str> {
    run.iter().map(|e| e.name.as_str()).collect()
}

/// Waits until `job`'s run in `user`'s stream has ended and returns it.
pub(crate) async fn ended_run(redis: &RedisManager, user: &str, job: &str) -> Vec<Seen> {
    eventually(
        Duration::from_secs(10),
        &format!("run of {job} ended"),
        || async { runs(redis, user).await.get(job).is_some_and(|r| ended(r)) },
    )
    .await;
    runs(redis, user).await.remove(job).unwrap()
}

/// A fresh server, a manager on it and the agent queue.
pub(crate) async fn setup(server: &RedisServer) -> (RedisManager, Jobs) {
    let redis = manager(&server.url()).await;
    let jobs = Jobs::new(redis.clone(), ssot_worker::AGENT_QUEUE).unwrap();
    (redis, jobs)
}
