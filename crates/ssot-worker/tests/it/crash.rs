//! Workers that die mid-run and agents that keep failing: one complete run per message,
//! never a duplicate event, `agent_failed` exactly once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ssot_testkit::RedisServer;
use ssot_worker::{Agent, AgentError, AgentFuture, DemoAgent, Run};

use crate::support::*;

/// Emits what the demo agent emits first, then hangs forever — the first time it sees a job.
#[derive(Default)]
struct HangsOnce {
    seen: Mutex<HashSet<String>>,
}

impl Agent for HangsOnce {
    fn run<'a>(&'a self, run: &'a mut Run) -> AgentFuture<'a> {
        Box::pin(async move {
            let first = self.seen.lock().unwrap().insert(run.job().id.clone());
            if first {
                let n = run.text().chars().count();
                run.thinking(&format!("Reading your message ({n} characters)."))
                    .await?;
                std::future::pending::<()>().await;
            }
            DemoAgent::default().run(run).await
        })
    }
}

/// Thinks, then fails, every time.
#[derive(Default)]
struct AlwaysFails {
    calls: AtomicUsize,
}

impl Agent for AlwaysFails {
    fn run<'a>(&'a self, run: &'a mut Run) -> AgentFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            run.thinking("trying").await?;
            Err(AgentError::Failed("the model is on fire".into()))
        })
    }
}

/// The "killed" worker here is a task abort inside this process (its agent hangs, its
/// connections drop with it); a real worker process SIGKILLed mid-run is
/// `ssot-cli/tests/cli/pipeline.rs::worker_killed_mid_run_and_duplicate_message_ids`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_is_replaced_without_duplicate_events() {
    let server = RedisServer::start();
    let (redis, jobs) = setup(&server).await;
    let doomed = TestWorker::start_with(
        options("doomed"),
        manager(&server.url()).await,
        Some(Arc::new(HangsOnce::default())),
    );
    let mut sent = Vec::new();
    // Every claim comes after this instant, so no run can be taken over before
    // `sent_at + reclaim-idle`.
    let sent_at = tokio::time::Instant::now();
    for (i, user) in ["k1", "k2", "k1"].into_iter().enumerate() {
        let message_id = format!("kill-{i}");
        sent.push((
            user,
            message_id.clone(),
            send(&jobs, user, &message_id, "count these words").await,
        ));
    }
    eventually(
        Duration::from_secs(5),
        "every run emitted two events",
        || async {
            let mut n = 0;
            for user in ["k1", "k2"] {
                n += events(&redis, user).await.len();
            }
            n == 2 * sent.len()
        },
    )
    .await;
    doomed.kill().await;

    let heir = TestWorker::start(options("heir"), manager(&server.url()).await);
    eventually(Duration::from_secs(10), "runs ended", || async {
        let mut ended_runs = 0;
        for user in ["k1", "k2"] {
            ended_runs += runs(&redis, user)
                .await
                .values()
                .filter(|r| ended(r))
                .count();
        }
        ended_runs == sent.len()
    })
    .await;
    // Taken over only once idle for reclaim-idle after the claim.
    let reclaim_idle = Duration::from_millis(options("heir").reclaim_idle_ms.unwrap());
    assert!(
        sent_at.elapsed() >= reclaim_idle,
        "runs ended {:?} after the sends",
        sent_at.elapsed()
    );
    for (user, message_id, job) in &sent {
        let run = &runs(&redis, user).await[job];
        assert_run(run, message_id, "agent_completed");
        assert_eq!(run.len(), 6, "{run:?}");
        assert_eq!(run[1].data["text"], "Reading your message (17 characters).");
    }
    assert_eq!(jobs.pending().await.unwrap(), 0);
    heir.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_keeps_failing_is_dead_lettered_and_reported_once() {
    let server = RedisServer::start();
    let (redis, jobs) = setup(&server).await;
    let agent = Arc::new(AlwaysFails::default());
    let workers = [
        TestWorker::start_with(
            options("f1"),
            manager(&server.url()).await,
            Some(agent.clone()),
        ),
        TestWorker::start_with(
            options("f2"),
            manager(&server.url()).await,
            Some(agent.clone()),
        ),
    ];
    let job = send(&jobs, "unlucky", "doomed-1", "anything").await;
    eventually(Duration::from_secs(10), "dead-lettered", || async {
        !jobs.dead_letters(10).await.unwrap().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let dead = jobs.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].job_id, job);
    assert_eq!(dead[0].deliveries, 3);
    assert!(dead[0].error.contains("on fire"), "{}", dead[0].error);
    assert_eq!(agent.calls.load(Ordering::SeqCst), 3);
    let run = &runs(&redis, "unlucky").await[&job];
    assert_run(run, "doomed-1", "agent_failed");
    let failed = run.last().unwrap();
    assert_eq!(failed.data["reason"], ssot_worker::FAILED_REASON);
    assert_eq!(failed.data["attempts"], 3);
    // Retries re-emitted their events under the same sequence numbers: dropped.
    assert_eq!(
        names(run),
        ["agent_started", "agent_thinking", "agent_failed"]
    );
    assert_eq!(jobs.pending().await.unwrap(), 0);
    for w in workers {
        w.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_workers_keep_dying_is_dead_lettered_by_reclaim_and_reported_once() {
    let server = RedisServer::start();
    let (redis, jobs) = setup(&server).await;
    let mut once = options("dies");
    once.max_deliveries = Some(1);
    let doomed = TestWorker::start_with(
        once.clone(),
        manager(&server.url()).await,
        Some(Arc::new(HangsOnce::default())),
    );
    let job = send(&jobs, "orphan", "o-1", "hello").await;
    eventually(Duration::from_secs(5), "run began", || async {
        events(&redis, "orphan").await.len() == 2
    })
    .await;
    doomed.kill().await;
    once.consumer = Some("survivor".into());
    let survivor = TestWorker::start(once, manager(&server.url()).await);
    eventually(Duration::from_secs(10), "failure announced", || async {
        runs(&redis, "orphan")
            .await
            .get(&job)
            .is_some_and(|r| ended(r))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let run = &runs(&redis, "orphan").await[&job];
    assert_run(run, "o-1", "agent_failed");
    assert_eq!(run.len(), 3, "{run:?}");
    assert_eq!(run[2].data["reason"], ssot_worker::FAILED_REASON, "{run:?}");
    let dead = jobs.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].error.contains("abandoned"), "{}", dead[0].error);
    assert_eq!(jobs.pending().await.unwrap(), 0);
    survivor.shutdown().await;
}
