//! Worker settings: [`WorkerOptions`] as written (the `[worker]` TOML table, CLI flags),
//! resolved into a validated [`WorkerConfig`] with errors that name the setting.

use std::time::Duration;

use hyper::Uri;
pub use redis_ssot::config::ConfigError;
use redis_ssot::config::{positive, positive_ms};
use serde::{Deserialize, Serialize};

/// Queue the gateway enqueues chat messages on, and the worker consumes by default.
pub const AGENT_QUEUE: &str = redis_ssot::stores::chat::CHAT_QUEUE;
/// Default number of streams the queue is split into (see [`JobsConfig::partitions`]).
///
/// [`JobsConfig::partitions`]: redis_ssot::stores::jobs::JobsConfig::partitions
pub const DEFAULT_QUEUE_PARTITIONS: u32 = redis_ssot::stores::jobs::DEFAULT_PARTITIONS;
/// Default jobs run at once per worker.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Default budget of one agent run (the whole run, not one step).
pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default longest silence between two NDJSON lines of the `http` agent.
pub const DEFAULT_AGENT_IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Default idle time after which a job whose worker died is taken over.
pub const DEFAULT_RECLAIM_IDLE: Duration = Duration::from_secs(75);
/// `reclaim-idle-ms` must exceed `agent-timeout-ms` by at least this much, so a live run is
/// never taken over: a run ends (and acks or fails) within its timeout plus a few commands.
pub const RECLAIM_MARGIN: Duration = Duration::from_secs(1);
/// Default deliveries of one job before it is dead-lettered.
pub const DEFAULT_MAX_DELIVERIES: u64 = redis_ssot::stores::jobs::DEFAULT_MAX_DELIVERIES;
/// Default tool calls per second per user and tool.
pub const DEFAULT_TOOL_RATE: u32 = 5;
/// Default burst of tool calls per user and tool.
pub const DEFAULT_TOOL_BURST: u32 = 10;
/// Default time in-flight jobs get to finish on shutdown before they are handed back.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Worker settings as written by the user (`[worker]`). Every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WorkerOptions {
    /// Job queue to consume (default [`AGENT_QUEUE`]).
    pub queue: Option<String>,
    /// Streams the queue is split into, each with its own hash tag (1 to 1024). Must be at
    /// least the gateway's count for the same queue, or some users' jobs are never run.
    pub queue_partitions: Option<u32>,
    /// Jobs run at once (`--concurrency`).
    pub concurrency: Option<usize>,
    /// Consumer name in the queue's group; default `<hostname>-<pid>-<random>`. Must be unique
    /// per running worker.
    pub consumer: Option<String>,
    /// `demo` or `http` (`--agent`).
    pub agent: Option<String>,
    /// URL the `http` agent POSTs jobs to (`--agent-url`); `http://` only.
    pub agent_url: Option<String>,
    /// Milliseconds one agent run may take in total.
    pub agent_timeout_ms: Option<u64>,
    /// Milliseconds the `http` agent's service may stay silent between two lines.
    pub agent_idle_timeout_ms: Option<u64>,
    /// Milliseconds the `demo` agent pauses before each step (0: none), to watch runs stream.
    pub demo_step_ms: Option<u64>,
    /// Milliseconds a claimed job must be idle before another worker takes it over.
    pub reclaim_idle_ms: Option<u64>,
    /// Deliveries of one job before it is dead-lettered.
    pub max_deliveries: Option<u64>,
    /// Tool calls per second per user and tool.
    pub tool_rate: Option<u32>,
    /// Burst of tool calls per user and tool.
    pub tool_burst: Option<u32>,
    /// Milliseconds in-flight jobs get to finish on shutdown.
    pub drain_timeout_ms: Option<u64>,
    /// Periodic jobs (`[[worker.schedule]]`).
    pub schedule: Option<Vec<ScheduleOptions>>,
}

/// One periodic job as written (`[[worker.schedule]]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScheduleOptions {
    /// Name of the job (`heartbeat`, or one registered with
    /// [`Worker::with_scheduled_job`](crate::Worker::with_scheduled_job)); also the lock name.
    pub name: Option<String>,
    /// Period in milliseconds; tick `n` starts at Unix time `n * every-ms`.
    pub every_ms: Option<u64>,
    /// How long one tick's lock is held, from the tick's start (default 3/4 of the period).
    pub lease_ms: Option<u64>,
}

/// Which agent runs the jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentConfig {
    /// The built-in deterministic agent.
    Demo {
        /// Pause before each step.
        step: Duration,
    },
    /// An HTTP service streaming NDJSON events.
    Http {
        /// Where to POST jobs (`http://host:port/path`).
        url: Uri,
        /// Longest silence between two lines.
        idle_timeout: Duration,
    },
}

/// A validated periodic job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Job and lock name.
    pub name: String,
    /// Period.
    pub every: Duration,
    /// Lock lease of one tick, counted from the tick's start; shorter than `every`.
    pub lease: Duration,
}

/// Validated worker settings. `Serialize` writes the `[worker]` keys.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Queue consumed.
    pub queue: String,
    /// Streams the queue is split into.
    pub queue_partitions: u32,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Consumer name.
    pub consumer: String,
    /// The agent.
    pub agent: AgentConfig,
    /// Budget of one run.
    pub agent_timeout: Duration,
    /// Idle bound before a job is taken over.
    pub reclaim_idle: Duration,
    /// Deliveries before dead-lettering.
    pub max_deliveries: u64,
    /// Tool calls per second per user and tool.
    pub tool_rate: u32,
    /// Tool-call burst per user and tool.
    pub tool_burst: u32,
    /// Shutdown drain budget.
    pub drain_timeout: Duration,
    /// Periodic jobs.
    pub schedule: Vec<ScheduleConfig>,
}

/// Shorthand kept for the worker's own checks of settings at start-up.
pub(crate) fn err(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::new(key, reason)
}

impl WorkerOptions {
    /// Parses the contents of a `[worker]` table.
    pub fn from_toml(text: &str) -> Result<WorkerOptions, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::new("worker", e.message().trim()))
    }

    /// Validates into settings; the error names the offending key.
    pub fn resolve(self) -> Result<WorkerConfig, ConfigError> {
        let queue = self.queue.unwrap_or_else(|| AGENT_QUEUE.to_owned());
        redis_ssot::keys::check_name("queue", &queue)
            .map_err(|e| ConfigError::new("worker.queue", e.to_string()))?;
        let queue_partitions = self.queue_partitions.unwrap_or(DEFAULT_QUEUE_PARTITIONS);
        let most = redis_ssot::stores::jobs::MAX_PARTITIONS;
        if !(1..=most).contains(&queue_partitions) {
            return Err(ConfigError::new(
                "worker.queue-partitions",
                format!("must be between 1 and {most}, got {queue_partitions}"),
            ));
        }
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=4096).contains(&concurrency) {
            return Err(ConfigError::new(
                "worker.concurrency",
                format!("must be between 1 and 4096, got {concurrency}"),
            ));
        }
        let consumer = match self.consumer {
            Some(c) => c,
            None => default_consumer(),
        };
        redis_ssot::keys::check_name("consumer", &consumer)
            .map_err(|e| ConfigError::new("worker.consumer", e.to_string()))?;

        let agent_timeout = millis(
            "agent-timeout-ms",
            self.agent_timeout_ms,
            DEFAULT_AGENT_TIMEOUT,
        )?;
        let agent = match self.agent.as_deref().unwrap_or("demo") {
            "demo" => {
                if self.agent_url.is_some() {
                    return Err(ConfigError::new(
                        "worker.agent-url",
                        "only used with agent = \"http\"",
                    ));
                }
                AgentConfig::Demo {
                    step: Duration::from_millis(self.demo_step_ms.unwrap_or(0)),
                }
            }
            "http" => {
                let raw = self.agent_url.ok_or_else(|| {
                    ConfigError::new("worker.agent-url", "required when agent = \"http\"")
                })?;
                let url = parse_http_url(&raw)
                    .map_err(|reason| ConfigError::new("worker.agent-url", reason))?;
                let idle_timeout = millis(
                    "agent-idle-timeout-ms",
                    self.agent_idle_timeout_ms,
                    DEFAULT_AGENT_IDLE_TIMEOUT.min(agent_timeout),
                )?;
                if idle_timeout > agent_timeout {
                    return Err(ConfigError::new(
                        "worker.agent-idle-timeout-ms",
                        "must not exceed agent-timeout-ms",
                    ));
                }
                AgentConfig::Http { url, idle_timeout }
            }
            other => {
                return Err(ConfigError::new(
                    "worker.agent",
                    format!("must be \"demo\" or \"http\", got {other:?}"),
                ));
            }
        };
        let reclaim_idle = millis(
            "reclaim-idle-ms",
            self.reclaim_idle_ms,
            DEFAULT_RECLAIM_IDLE,
        )?;
        if reclaim_idle < agent_timeout + RECLAIM_MARGIN {
            return Err(ConfigError::new(
                "worker.reclaim-idle-ms",
                format!(
                    "must be at least agent-timeout-ms + {} ms ({} ms), so a live run is never taken over; got {} ms",
                    RECLAIM_MARGIN.as_millis(),
                    (agent_timeout + RECLAIM_MARGIN).as_millis(),
                    reclaim_idle.as_millis()
                ),
            ));
        }
        let max_deliveries = positive(
            "worker.max-deliveries",
            self.max_deliveries,
            DEFAULT_MAX_DELIVERIES,
        )?;
        let tool_rate = positive("worker.tool-rate", self.tool_rate, DEFAULT_TOOL_RATE)?;
        let tool_burst = positive("worker.tool-burst", self.tool_burst, DEFAULT_TOOL_BURST)?;
        let drain_timeout = Duration::from_millis(
            self.drain_timeout_ms
                .unwrap_or(DEFAULT_DRAIN_TIMEOUT.as_millis() as u64),
        );

        let mut schedule: Vec<ScheduleConfig> = Vec::new();
        for (i, entry) in self.schedule.unwrap_or_default().into_iter().enumerate() {
            let key = |field: &str| format!("worker.schedule[{i}].{field}");
            let name = entry
                .name
                .ok_or_else(|| ConfigError::new(key("name"), "required"))?;
            redis_ssot::keys::check_name("scheduled job", &name)
                .map_err(|e| ConfigError::new(key("name"), e.to_string()))?;
            if schedule.iter().any(|s| s.name == name) {
                return Err(ConfigError::new(
                    key("name"),
                    format!("{name:?} is scheduled twice"),
                ));
            }
            let every = match entry.every_ms {
                None => return Err(ConfigError::new(key("every-ms"), "required")),
                Some(ms) if ms < 10 => {
                    return Err(ConfigError::new(
                        key("every-ms"),
                        format!("must be at least 10, got {ms}"),
                    ));
                }
                Some(ms) => Duration::from_millis(ms),
            };
            let lease = match entry.lease_ms {
                None => every * 3 / 4,
                Some(ms) if ms == 0 || Duration::from_millis(ms) >= every => {
                    return Err(ConfigError::new(
                        key("lease-ms"),
                        format!(
                            "must be between 1 and every-ms - 1 ({}), got {ms}",
                            every.as_millis() - 1
                        ),
                    ));
                }
                Some(ms) => Duration::from_millis(ms),
            };
            schedule.push(ScheduleConfig { name, every, lease });
        }

        Ok(WorkerConfig {
            queue,
            queue_partitions,
            concurrency,
            consumer,
            agent,
            agent_timeout,
            reclaim_idle,
            max_deliveries,
            tool_rate,
            tool_burst,
            drain_timeout,
            schedule,
        })
    }
}

/// What a [`WorkerConfig`] serializes as: the keys of `[worker]`.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct WorkerView<'a> {
    queue: &'a str,
    concurrency: usize,
    consumer: &'a str,
    agent: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_idle_timeout_ms: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    demo_step_ms: Option<u128>,
    agent_timeout_ms: u128,
    reclaim_idle_ms: u128,
    max_deliveries: u64,
    tool_rate: u32,
    tool_burst: u32,
    drain_timeout_ms: u128,
    schedule: Vec<ScheduleView<'a>>,
}

/// One `[[worker.schedule]]` entry.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ScheduleView<'a> {
    name: &'a str,
    every_ms: u128,
    lease_ms: u128,
}

impl Serialize for WorkerConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (agent, agent_url, agent_idle_timeout_ms, demo_step_ms) = match &self.agent {
            AgentConfig::Demo { step } => ("demo", None, None, Some(step.as_millis())),
            AgentConfig::Http { url, idle_timeout } => (
                "http",
                Some(url.to_string()),
                Some(idle_timeout.as_millis()),
                None,
            ),
        };
        WorkerView {
            queue: &self.queue,
            concurrency: self.concurrency,
            consumer: &self.consumer,
            agent,
            agent_url,
            agent_idle_timeout_ms,
            demo_step_ms,
            agent_timeout_ms: self.agent_timeout.as_millis(),
            reclaim_idle_ms: self.reclaim_idle.as_millis(),
            max_deliveries: self.max_deliveries,
            tool_rate: self.tool_rate,
            tool_burst: self.tool_burst,
            drain_timeout_ms: self.drain_timeout.as_millis(),
            schedule: self
                .schedule
                .iter()
                .map(|s| ScheduleView {
                    name: &s.name,
                    every_ms: s.every.as_millis(),
                    lease_ms: s.lease.as_millis(),
                })
                .collect(),
        }
        .serialize(serializer)
    }
}

fn millis(key: &str, value: Option<u64>, default: Duration) -> Result<Duration, ConfigError> {
    positive_ms(&format!("worker.{key}"), value, default)
}

/// Only plain `http://` with a host: the client is HTTP/1.1 over TCP, without TLS. Userinfo
/// (`user:password@`) is refused rather than redacted wherever the URL might show: the
/// worker would send it as nothing but a `Host` header anyway, and a refused URL cannot
/// leak. Messages never echo the URL, which may hold a password.
fn parse_http_url(raw: &str) -> Result<Uri, String> {
    let uri: Uri = raw.parse().map_err(|e| format!("not a URL ({e})"))?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(
            "credentials (user:password@) in the URL are not supported; give the agent service its credentials another way".into(),
        );
    }
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(format!("only http:// is supported, got {other}://")),
        None => return Err("expected http://host:port/path".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    Ok(uri)
}

/// `<hostname>-<pid>-<random>`, restricted to the characters a consumer name allows.
fn default_consumer() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let host = if host.is_empty() {
        "worker".to_owned()
    } else {
        host
    };
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

#[cfg(test)]
mod tests;
