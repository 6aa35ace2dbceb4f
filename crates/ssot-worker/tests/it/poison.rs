//! Issue 12, finding 5: the worker survives any single job. A message that used to overflow
//! the stack and an agent that panics each fail (or finish) their own job only; the worker
//! goes on with the next one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ssot_testkit::RedisServer;
use ssot_worker::{Agent, AgentFuture, DemoAgent, Run};

use crate::support::*;

/// Panics on a message containing "panic"; answers the others like the demo agent.
#[derive(Default)]
struct PanicsOnRequest {
    panics: AtomicUsize,
}

impl Agent for PanicsOnRequest {
    fn run<'a>(&'a self, run: &'a mut Run) -> AgentFuture<'a> {
        Box::pin(async move {
            if run.text().contains("panic") {
                run.thinking("about to fall over").await?;
                self.panics.fetch_add(1, Ordering::SeqCst);
                panic!("boom in the agent");
            }
            DemoAgent::default().run(run).await
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deeply_nested_message_is_answered_and_the_next_job_runs() {
    let server = RedisServer::start();
    let (redis, jobs) = setup(&server).await;
    let worker = TestWorker::start(options("poison"), manager(&server.url()).await);

    let pill = format!("{}1+1", "(".repeat(10_000));
    let poisoned = send(&jobs, "p", "pill", &pill).await;
    let minus = send(&jobs, "p", "minus", &format!("{}1", "-".repeat(10_000))).await;
    let next = send(&jobs, "p", "next", "2*21").await;

    // Too deep for the calculator: answered by another tool, not by a crash.
    let run = ended_run(&redis, "p", &poisoned).await;
    assert_run(&run, "pill", "agent_completed");
    assert_eq!(run[2].data["tool"], "word_count", "{run:?}");
    assert_run(
        &ended_run(&redis, "p", &minus).await,
        "minus",
        "agent_completed",
    );
    let run = ended_run(&redis, "p", &next).await;
    assert_run(&run, "next", "agent_completed");
    assert_eq!(run.last().unwrap().data["answer"], "That makes 42.");
    assert_eq!(jobs.pending().await.unwrap(), 0);
    assert!(jobs.dead_letters(10).await.unwrap().is_empty());
    worker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_agent_fails_its_job_which_is_dead_lettered_and_the_worker_goes_on() {
    let server = RedisServer::start();
    let (redis, jobs) = setup(&server).await;
    let agent = Arc::new(PanicsOnRequest::default());
    let worker = TestWorker::start_with(
        options("panicky"),
        manager(&server.url()).await,
        Some(agent.clone()),
    );

    let doomed = send(&jobs, "q", "doomed", "please panic").await;
    let after = send(&jobs, "q", "after", "hi there").await;
    let run = ended_run(&redis, "q", &after).await;
    assert_run(&run, "after", "agent_completed");

    // Each panic failed the attempt at once (not left for a reclaim of a dead worker), so
    // the job used its 3 deliveries and was dead-lettered with the panic as its reason.
    let run = ended_run(&redis, "q", &doomed).await;
    assert_run(&run, "doomed", "agent_failed");
    assert_eq!(run.last().unwrap().data["attempts"], 3);
    let dead = jobs.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].job_id, doomed);
    assert_eq!(dead[0].deliveries, 3);
    assert_eq!(dead[0].error, "agent panicked: boom in the agent");
    assert_eq!(agent.panics.load(Ordering::SeqCst), 3);
    assert_eq!(jobs.pending().await.unwrap(), 0);

    // Still consuming after all that.
    let later = send(&jobs, "q", "later", "2*21").await;
    let run = ended_run(&redis, "q", &later).await;
    assert_eq!(run.last().unwrap().data["answer"], "That makes 42.");
    // Shut down cleanly: the worker task itself never panicked.
    assert!(worker.shutdown().await < Duration::from_secs(5));
}
