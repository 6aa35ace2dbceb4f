//! `ssot worker`: runs the agent for each chat job users send through the gateway —
//! at-least-once, crash-safe, with each event delivered to the user once — and periodic jobs
//! under a fenced lock.
//!
//! # Layout
//! - [`config`]: [`WorkerOptions`] (the `[worker]` table, CLI flags) resolved into
//!   [`WorkerConfig`].
//! - [`agent`]: the [`Agent`] trait, the [`Run`] it works through (events, tools, run
//!   state), [`DemoAgent`] and [`HttpAgent`].
//! - `worker`: [`Worker`] — claim / reclaim loop, one task per job, drain on shutdown.
//! - [`schedule`]: periodic jobs under `Locks` with fencing; the built-in [`Heartbeat`].
//! - `retry`: backoff and deadline-bounded retries of Redis calls.
//!
//! # Delivery guarantees
//! Jobs come from [`Jobs`](redis_ssot::stores::jobs::Jobs) (stream + consumer group, split
//! into `queue-partitions` streams), written by the gateway and read here through one seam,
//! [`redis_ssot::stores::chat`] (`NewJob::chat` / `Job::chat`). A job is
//! acked only after its last event is stored, so a crash anywhere means the job runs again
//! after `reclaim-idle`. Every event is appended with `Events::append_once(job id, seq)`, so
//! what a dead worker already emitted is not delivered twice, and the end of a run
//! (`agent_completed` / `agent_failed`) is appended once per job whichever attempt gets there.
//!
//! One job cannot take the worker down: an agent that panics fails its attempt, the demo
//! agent's parser has a depth bound, and users read a generic `agent_failed` reason
//! ([`FAILED_REASON`]) while the detail goes to the log and the dead letter.
//!
//! Redis is reached only through the process's [`redis_ssot::RedisManager`].
//!
//! # Example
//! ```no_run
//! # async fn demo(redis: redis_ssot::RedisManager) -> Result<(), Box<dyn std::error::Error>> {
//! let mut options = ssot_worker::WorkerOptions::default();
//! options.concurrency = Some(8);
//! let config = options.resolve()?;
//! // Binaries pass e.g. a SIGTERM future; this one never ends.
//! ssot_worker::run(config, redis, std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod agent;
pub mod config;
mod retry;
pub mod schedule;
mod worker;

use std::future::Future;

use redis_ssot::RedisManager;

pub use agent::{Agent, AgentError, AgentFuture, DemoAgent, FAILED_REASON, HttpAgent, Run};
pub use config::{AGENT_QUEUE, ConfigError, ScheduleOptions, WorkerConfig, WorkerOptions};
pub use redis_ssot::stores::chat::CHAT_KIND;
pub use schedule::{Heartbeat, HeartbeatRun, ScheduledJob, Tick};
pub use worker::Worker;

/// Why the worker could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// A setting cannot be used (e.g. a schedule names an unknown job).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Setting up the stores failed.
    #[error(transparent)]
    Redis(#[from] redis_ssot::Error),
}

/// Runs a worker with the configured agent until `shutdown` completes, then drains in-flight
/// jobs and returns. Redis outages are waited out, never returned.
pub async fn run(
    config: WorkerConfig,
    manager: RedisManager,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WorkerError> {
    Worker::new(config, manager).run(shutdown).await
}
