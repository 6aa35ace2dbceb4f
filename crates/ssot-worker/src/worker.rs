//! The worker: claims agent jobs (chat messages, and jobs posted over HTTP), runs the agent on each, reclaims jobs of dead workers, and
//! runs the periodic jobs.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use redis_ssot::stores::agent_state::AgentState;
use redis_ssot::stores::chat::CHAT_KIND;
use redis_ssot::stores::events::{Events, EventsConfig};
use redis_ssot::stores::jobs::{DeadLetter, FailOutcome, Job, Jobs, JobsConfig};
use redis_ssot::stores::rate_limit::RateLimiter;
use redis_ssot::{RedisManager, UserScope};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::WorkerError;
use crate::agent::{
    self, AGENT_COMPLETED, AGENT_FAILED, Agent, AgentError, DemoAgent, FAILED_REASON, HttpAgent,
    Run, RunStores, Started, json_map,
};
use crate::config::{AgentConfig, WorkerConfig, err};
use crate::retry;
use crate::schedule::{HEARTBEAT, Heartbeat, ScheduledJob, run_schedule};

/// Longest wait of one claim; also how late a worker may notice a shutdown.
const CLAIM_BLOCK: Duration = Duration::from_millis(500);
/// Budget of the few commands that close a job (ack, fail, notifications).
const CLOSE_BUDGET: Duration = Duration::from_secs(1);

/// A worker, ready to [`run`](Worker::run).
///
/// ## Behavior
/// - One loop claims new jobs (blocking up to 500 ms) as long as fewer than `concurrency`
///   run, and every quarter of `reclaim-idle` takes over jobs idle longer than `reclaim-idle`
///   (their worker died) and announces `agent_failed` for jobs the reclaim dead-lettered.
/// - Each job runs in its own task: its state becomes `running` (`Jobs::start`), then
///   `agent_started`, the agent under `agent-timeout`, then
///   `agent_completed` and ack, or `jobs.fail` (retried by the next reclaim) and, on the last
///   delivery, `agent_failed` before the job moves to the dead letters. The user's
///   `agent_failed` says only [`FAILED_REASON`]; the detail goes to the log and the dead
///   letter, URL credentials redacted. An agent that panics
///   fails its attempt the same way (`agent panicked: ...`); no job can take the process
///   down with it.
/// - Redis trouble pauses the loop with exponential backoff (never a busy loop); in-flight runs
///   retry their writes until their deadline, then leave the job to be reclaimed.
/// - Shutdown stops claiming, gives in-flight jobs `drain-timeout` to finish, then drops the
///   rest unacknowledged (another worker reclaims them) and returns.
pub struct Worker {
    config: WorkerConfig,
    manager: RedisManager,
    agent: Arc<dyn Agent>,
    scheduled: HashMap<String, Arc<dyn ScheduledJob>>,
    events: EventsConfig,
}

struct Shared {
    config: WorkerConfig,
    /// The manager's connect timeout: failures to take jobs before the first success and
    /// within it are the connection still coming up, not an outage.
    connect_grace: Duration,
    jobs: Jobs,
    agent: Arc<dyn Agent>,
    stores: Arc<RunStores>,
}

impl Worker {
    /// A worker running the agent named by `config` (and the built-in periodic jobs).
    pub fn new(config: WorkerConfig, manager: RedisManager) -> Worker {
        let agent: Arc<dyn Agent> = match &config.agent {
            AgentConfig::Demo { step } => Arc::new(DemoAgent::new(*step)),
            AgentConfig::Http { url, idle_timeout } => {
                Arc::new(HttpAgent::new(url.clone(), *idle_timeout))
            }
        };
        let mut scheduled: HashMap<String, Arc<dyn ScheduledJob>> = HashMap::new();
        scheduled.insert(
            HEARTBEAT.to_owned(),
            Arc::new(Heartbeat::new(manager.clone())),
        );
        Worker {
            config,
            manager,
            agent,
            scheduled,
            events: EventsConfig::default(),
        }
    }

    /// Appends events with this retention; use the gateway's, so both trim the same way.
    pub fn with_events_config(mut self, events: EventsConfig) -> Worker {
        self.events = events;
        self
    }

    /// Runs `agent` instead of the configured one.
    pub fn with_agent(mut self, agent: Arc<dyn Agent>) -> Worker {
        self.agent = agent;
        self
    }

    /// Makes `job` available to `[[worker.schedule]]` entries named `name`.
    pub fn with_scheduled_job(mut self, name: &str, job: Arc<dyn ScheduledJob>) -> Worker {
        self.scheduled.insert(name.to_owned(), job);
        self
    }

    /// The settings in force.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Consumes jobs and runs periodic jobs until `shutdown` completes, then drains.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), WorkerError> {
        let mut schedules = Vec::new();
        for (i, entry) in self.config.schedule.iter().enumerate() {
            let job = self.scheduled.get(&entry.name).ok_or_else(|| {
                let mut known: Vec<&str> = self.scheduled.keys().map(String::as_str).collect();
                known.sort_unstable();
                err(
                    format!("worker.schedule[{i}].name"),
                    format!(
                        "no scheduled job {:?} (known: {})",
                        entry.name,
                        known.join(", ")
                    ),
                )
            })?;
            schedules.push((entry.clone(), Arc::clone(job)));
        }
        let jobs = Jobs::with_config(
            self.manager.clone(),
            &self.config.queue,
            JobsConfig {
                max_deliveries: self.config.max_deliveries,
                partitions: self.config.queue_partitions,
                ..JobsConfig::default()
            },
        )?;
        let stores = Arc::new(RunStores {
            events: Events::with_config(self.manager.clone(), self.events),
            state: AgentState::new(self.manager.clone()),
            limiter: RateLimiter::new(self.manager.clone()),
            tool_rate: self.config.tool_rate,
            tool_burst: self.config.tool_burst,
        });
        let shared = Arc::new(Shared {
            connect_grace: self.manager.config().connect_timeout,
            config: self.config,
            jobs,
            agent: self.agent,
            stores,
        });
        tracing::info!(
            queue = %shared.config.queue,
            partitions = shared.config.queue_partitions,
            consumer = %shared.config.consumer,
            concurrency = shared.config.concurrency,
            schedules = schedules.len(),
            "worker started"
        );

        let (stop_tx, stop_rx) = watch::channel(false);
        // Dropping the set (e.g. when this future is dropped) stops the periodic jobs.
        let mut periodic = JoinSet::new();
        for (entry, job) in schedules {
            periodic.spawn(run_schedule(
                self.manager.clone(),
                entry,
                job,
                shared.config.consumer.clone(),
                stop_rx.clone(),
            ));
        }
        let work = async {
            let consumed = consume(Arc::clone(&shared), stop_rx.clone());
            let periodic = async { while periodic.join_next().await.is_some() {} };
            tokio::join!(consumed, periodic);
        };
        tokio::pin!(work);
        tokio::select! {
            () = &mut work => {}
            () = shutdown => {
                tracing::info!(consumer = %shared.config.consumer, "worker stopping");
                let _ = stop_tx.send(true);
                work.await;
            }
        }
        tracing::info!(consumer = %shared.config.consumer, "worker stopped");
        Ok(())
    }
}

/// The claim / reclaim loop, then the drain.
async fn consume(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let config = &shared.config;
    let consumer = config.consumer.as_str();
    let reclaim_every =
        (config.reclaim_idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    // Dropping the set aborts the runs: their jobs stay pending and are reclaimed elsewhere.
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut backoff = retry::backoff();
    let mut next_reclaim = Instant::now();
    let started = Instant::now();
    // Warn only about an outage: Redis was reached and went away, or never came up within
    // the connect timeout. `warned` pairs each warning with one "redis is back".
    let mut reached = false;
    let mut warned = false;
    loop {
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done {
                tracing::error!(cause = %e, "job task panicked");
            }
        }
        if *stop.borrow() {
            break;
        }
        let free = config.concurrency - tasks.len();
        if free == 0 {
            tokio::select! {
                _ = tasks.join_next() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let now = Instant::now();
        let result = if now >= next_reclaim {
            shared
                .jobs
                .reclaim(consumer, config.reclaim_idle, free)
                .await
                .map(|reclaimed| {
                    // A full batch may mean more are waiting: look again at once.
                    if reclaimed.jobs.len() + reclaimed.dead_lettered.len() < free {
                        next_reclaim = now + reclaim_every;
                    }
                    for job in &reclaimed.jobs {
                        tracing::info!(job = %job.id, deliveries = job.deliveries, "job reclaimed");
                    }
                    for dead in reclaimed.dead_lettered {
                        let shared = Arc::clone(&shared);
                        tasks.spawn(async move { announce_dead_letter(&shared, dead).await });
                    }
                    reclaimed.jobs
                })
        } else {
            shared
                .jobs
                .claim(consumer, free, (next_reclaim - now).min(CLAIM_BLOCK))
                .await
        };
        match result {
            Ok(jobs) => {
                if warned {
                    tracing::info!(consumer, "redis is back; consuming again");
                }
                reached = true;
                warned = false;
                backoff.reset();
                for job in jobs {
                    let shared = Arc::clone(&shared);
                    tasks.spawn(async move { process(&shared, job).await });
                }
            }
            Err(e) => {
                let starting = !reached && started.elapsed() < shared.connect_grace;
                if starting {
                    tracing::debug!(consumer, cause = %e, "redis not reached yet; retrying");
                } else if !warned {
                    tracing::warn!(consumer, cause = %e, "cannot take jobs; pausing with backoff");
                    warned = true;
                }
                let pause = backoff.pause_at_least(e.retry_after());
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
    if tasks.is_empty() {
        return;
    }
    let in_flight = tasks.len();
    let drained = tokio::time::timeout(config.drain_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            in_flight,
            left = tasks.len(),
            "drain budget spent; handing the rest back (reclaimed by another worker)"
        );
        tasks.shutdown().await;
    }
}

/// Runs one job to its end (or leaves it pending for a reclaim when Redis is gone).
#[tracing::instrument(skip_all, fields(job = %job.id, user = %job.user, deliveries = job.deliveries))]
async fn process(shared: &Shared, job: Job) {
    let config = &shared.config;
    let deadline = Instant::now() + config.agent_timeout;
    // A chat job must carry a chat message: a malformed one still gets a run (and its
    // `agent_failed`), under whatever message id it names. Another kind (a job posted over
    // HTTP: a scheduled report, a webhook) runs the agent on its payload's `text`, or on the
    // payload itself, under its `message_id` or else the job id.
    let chat = if job.kind == CHAT_KIND {
        job.chat().map(|chat| (chat.message_id, chat.text))
    } else {
        Ok(other_kind(&job))
    };
    let (message_id, text) = match &chat {
        Ok((message_id, text)) => (message_id.clone(), text.clone()),
        Err(_) => (message_id_of(&job.payload).to_owned(), String::new()),
    };
    // Its state reads `running` from now on (best effort: the state is for callers to look
    // at, the run goes on without it).
    if let Err(e) = shared.jobs.start(&job).await {
        tracing::debug!(cause = %e, "job state not marked running");
    }

    let mut run = match Run::start(
        Arc::clone(&shared.stores),
        job.clone(),
        message_id,
        text,
        deadline,
    )
    .await
    {
        Ok(Started::Run(run)) => run,
        Ok(Started::AlreadyDone) => {
            tracing::info!("run already ended; acknowledging");
            ack(shared, &job).await;
            return;
        }
        Err(AgentError::Superseded) => {
            tracing::info!("another delivery took over the run");
            return;
        }
        Err(e) => {
            fail(shared, &job, None, &e.to_string()).await;
            return;
        }
    };

    let outcome = tokio::time::timeout_at(deadline, async {
        chat.map_err(|e| AgentError::Failed(e.to_string()))?;
        run.begin().await?;
        // A panicking agent fails this attempt like any other error (retried, then
        // dead-lettered), instead of unwinding through the task and leaving the job to sit
        // until a reclaim. The run is not reused after a panic except to announce the end,
        // which only reads its sequence numbers.
        AssertUnwindSafe(shared.agent.run(&mut run))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                Err(AgentError::Failed(format!(
                    "agent panicked: {}",
                    panic_message(&*panic)
                )))
            })
    })
    .await
    .unwrap_or_else(|_| {
        Err(AgentError::Failed(format!(
            "timed out after {} ms",
            config.agent_timeout.as_millis()
        )))
    });

    match outcome {
        Ok(answer) => match run
            .finish(AGENT_COMPLETED, json_map(json!({ "answer": answer })))
            .await
        {
            Ok(()) => ack(shared, &job).await,
            Err(e) => {
                tracing::warn!(cause = %e, "could not record the answer; the job will be reclaimed")
            }
        },
        Err(AgentError::Superseded) => tracing::info!("another delivery took over the run"),
        Err(e) => fail(shared, &job, Some(&mut *run), &e.to_string()).await,
    }
}

/// The message id and text of a job that is not a chat message.
fn other_kind(job: &Job) -> (String, String) {
    let message_id = match message_id_of(&job.payload) {
        "" => job.id.clone(),
        named => named.to_owned(),
    };
    let text = match job.payload.get("text").and_then(Value::as_str) {
        Some(text) => text.to_owned(),
        None => job.payload.to_string(),
    };
    (message_id, text)
}

/// The message id a job's payload names, even when it is not a valid chat job
/// (see `redis_ssot::stores::chat`), so its `agent_failed` still reaches the message.
fn message_id_of(payload: &Value) -> &str {
    payload["message_id"].as_str().unwrap_or_default()
}

/// The text a panic was raised with (`panic!("...")` gives a `&str` or a `String`).
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

/// Records a failed attempt: retried later, or — on the last delivery — `agent_failed` for the
/// user, then the dead letters.
///
/// `reason` is the detail (an agent's error text): it goes to the log and the dead letter,
/// with URL credentials redacted, never to the user, who gets [`FAILED_REASON`].
async fn fail(shared: &Shared, job: &Job, run: Option<&mut Run>, reason: &str) {
    let last = job.deliveries >= shared.config.max_deliveries;
    let reason = agent::redact_credentials(reason);
    let reason = reason.as_ref();
    tracing::warn!(reason, last, "run failed");
    if last {
        let data = json_map(json!({ "reason": FAILED_REASON, "attempts": job.deliveries }));
        let announced = match run {
            Some(run) => run.finish(AGENT_FAILED, data).await,
            None => {
                let scope = UserScope::new(job.user.clone());
                announce(shared, &scope, &job.id, message_id_of(&job.payload), data).await
            }
        };
        if let Err(e) = announced {
            // Leave the job pending: the reclaim that dead-letters it announces the failure.
            tracing::warn!(cause = %e, "could not announce the failure; the job will be reclaimed");
            return;
        }
    }
    let deadline = Instant::now() + CLOSE_BUDGET;
    match retry::until(deadline, || shared.jobs.fail(job, reason)).await {
        Ok(FailOutcome::DeadLettered(dead)) => {
            tracing::warn!(dead = %dead.id, "job dead-lettered");
        }
        Ok(FailOutcome::Retry) => {}
        Ok(_) => tracing::info!("job no longer held by this worker"),
        Err(e) => {
            tracing::warn!(cause = %e, "could not record the failure; the job will be reclaimed")
        }
    }
}

/// `agent_failed` for a job that a reclaim dead-lettered (its workers kept dying).
async fn announce_dead_letter(shared: &Shared, dead: DeadLetter) {
    tracing::warn!(job = %dead.job_id, error = %dead.error, "job dead-lettered by reclaim");
    let Some(user) = dead.user.clone() else {
        tracing::warn!(job = %dead.job_id, "dead letter names no valid user; nobody to tell");
        return;
    };
    let scope = UserScope::new(user);
    let message_id = message_id_of(&dead.payload);
    let data = json_map(json!({ "reason": FAILED_REASON, "attempts": dead.deliveries }));
    if let Err(e) = announce(shared, &scope, &dead.job_id, message_id, data).await {
        tracing::error!(job = %dead.job_id, cause = %e, "could not announce a dead-lettered job");
    }
}

/// Emits `agent_failed` (once per job) after the highest sequence number delivered.
async fn announce(
    shared: &Shared,
    scope: &UserScope,
    job_id: &str,
    message_id: &str,
    data: serde_json::Map<String, Value>,
) -> Result<(), AgentError> {
    let deadline = Instant::now() + CLOSE_BUDGET;
    let seq = agent::delivered(&shared.stores, scope, job_id, deadline).await? + 1;
    agent::emit_terminal(
        &shared.stores,
        scope,
        job_id,
        message_id,
        seq,
        AGENT_FAILED,
        data,
        deadline,
    )
    .await
}

async fn ack(shared: &Shared, job: &Job) {
    let deadline = Instant::now() + CLOSE_BUDGET;
    match retry::until(deadline, || shared.jobs.ack(job)).await {
        Ok(true) => {
            tracing::debug!("job done");
            // The run state is only needed while the job may run again; drop it now rather
            // than at its TTL. Best effort: it expires anyway.
            let scope = UserScope::new(job.user.clone());
            if let Err(e) = shared.stores.state.delete(&scope, &job.id).await {
                tracing::debug!(cause = %e, "run state not deleted; it expires");
            }
        }
        Ok(false) => tracing::info!("job was no longer pending at ack"),
        Err(e) => {
            tracing::warn!(cause = %e, "ack failed; the job will be reclaimed and its events de-duplicated")
        }
    }
}
