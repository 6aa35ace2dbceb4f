//! Agents: the [`Agent`] trait, the [`Run`] an agent works through, and the two built-in
//! agents ([`DemoAgent`], [`HttpAgent`]).
//!
//! An agent sees one job at a time through a [`Run`]: it reads the message, emits progress
//! (`agent_thinking`, tool calls) and returns the answer. The worker emits `agent_started`
//! before and `agent_completed` / `agent_failed` after, so every run is framed the same way
//! whatever the agent does.

mod demo;
mod http;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use redis_ssot::UserScope;
use redis_ssot::stores::agent_state::AgentState;
use redis_ssot::stores::events::Events;
use redis_ssot::stores::jobs::Job;
use redis_ssot::stores::rate_limit::{Limit, RateLimiter};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

pub use demo::{BuiltinTool, DemoAgent};
pub use http::HttpAgent;

use crate::retry;

/// Event that opens a run (emitted by the worker), with the message's `text`.
pub const AGENT_STARTED: &str = "agent_started";
/// A thought of the agent.
pub const AGENT_THINKING: &str = "agent_thinking";
/// A tool call begins.
pub const TOOL_EXECUTING: &str = "tool_executing";
/// A tool call ended.
pub const TOOL_COMPLETED: &str = "tool_completed";
/// The run ended with an answer (emitted by the worker).
pub const AGENT_COMPLETED: &str = "agent_completed";
/// The run failed for good (emitted by the worker, once per job), with `data.reason` set to
/// [`FAILED_REASON`] and `data.attempts`.
pub const AGENT_FAILED: &str = "agent_failed";
/// The only reason a user reads in `agent_failed`. What went wrong (an agent service's error
/// text, a URL, a stack of causes) may hold secrets or internals, so it goes to the worker's
/// log and the job's dead letter instead.
pub const FAILED_REASON: &str = "the agent could not answer this message";
/// Events an agent may emit itself, through [`Run::emit`].
pub const PROGRESS_EVENTS: [&str; 3] = [AGENT_THINKING, TOOL_EXECUTING, TOOL_COMPLETED];

/// De-duplication key of a run's last event (`agent_completed` or `agent_failed`): one per
/// job whichever attempt emits it, so the user never sees two endings.
const TERMINAL: u64 = u64::MAX;
/// Budget to record the end of a run after the agent returned.
const TERMINAL_BUDGET: Duration = Duration::from_millis(800);

/// The future an [`Agent`] returns: the answer, or why the run failed.
pub type AgentFuture<'a> = Pin<Box<dyn Future<Output = Result<String, AgentError>> + Send + 'a>>;

/// Something that works on chat jobs.
///
/// ## Behavior expected of an implementation
/// - Emit progress through `run` ([`Run::thinking`], [`Run::tool`], [`Run::emit`]) and
///   return the answer; the worker frames the run with `agent_started` and
///   `agent_completed` / `agent_failed`.
/// - A run may be repeated (worker crash, retry after a failure). Events are de-duplicated
///   by job and sequence number, so an agent that emits the same sequence again is invisible
///   to the user; tool results are kept in the run state and not computed twice.
/// - Propagate [`AgentError`]s from `run` with `?`; return [`AgentError::Failed`] to fail
///   the attempt (retried until the job's deliveries are used up).
pub trait Agent: Send + Sync + 'static {
    /// Works on one job.
    fn run<'a>(&'a self, run: &'a mut Run) -> AgentFuture<'a>;
}

/// Why a run stopped without an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The agent gave up (bad input, its service failed, a tool failed, timeout).
    #[error("{0}")]
    Failed(String),
    /// Another delivery of the job took over the run; this one must stop and leave the job
    /// alone.
    #[error("another delivery of this job took over the run")]
    Superseded,
    /// Redis could not record progress within the run's budget.
    #[error("redis: {0}")]
    Redis(#[from] redis_ssot::Error),
}

/// State of one run kept in [`AgentState`] (run id = job id), so a repeated run continues
/// where the last one got to: which events reached the user, which tools already answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunState {
    /// The delivery running it (`<consumer>#<deliveries>`).
    owner: String,
    /// Highest sequence number delivered to the user.
    delivered: u64,
    /// Tool results by the sequence number of their `tool_executing` event.
    #[serde(default)]
    tools: BTreeMap<u64, Value>,
    /// True once `agent_completed` or `agent_failed` was delivered.
    done: bool,
}

/// Stores and limits every run of a worker uses.
#[derive(Debug)]
pub(crate) struct RunStores {
    pub(crate) events: Events,
    pub(crate) state: AgentState,
    pub(crate) limiter: RateLimiter,
    pub(crate) tool_rate: u32,
    pub(crate) tool_burst: u32,
}

/// One attempt at one chat job, as an agent sees it.
///
/// ## Behavior
/// - Every event gets the next sequence number (1 is `agent_started`) and carries
///   `{"job", "seq", "message_id"}` plus its content; it is appended once per (job, seq).
/// - Progress is recorded in [`AgentState`] by compare-and-set; if another delivery of the
///   job wrote in between, the next call fails with [`AgentError::Superseded`].
/// - Redis errors are retried with backoff until the run's deadline.
pub struct Run {
    job: Job,
    scope: UserScope,
    message_id: String,
    text: String,
    next_seq: u64,
    state: RunState,
    version: u64,
    deadline: Instant,
    stores: Arc<RunStores>,
}

/// How [`Run::start`] went.
pub(crate) enum Started {
    /// The run is ours.
    Run(Box<Run>),
    /// An earlier attempt already delivered the end of the run; only the ack is missing.
    AlreadyDone,
}

impl Run {
    /// Takes over the run of `job` (recording this delivery as its owner).
    pub(crate) async fn start(
        stores: Arc<RunStores>,
        job: Job,
        message_id: String,
        text: String,
        deadline: Instant,
    ) -> Result<Started, AgentError> {
        let scope = UserScope::new(job.user.clone());
        let stored =
            retry::until(deadline, || stores.state.get::<RunState>(&scope, &job.id)).await?;
        let (version, mut state) =
            stored.map_or((0, RunState::default()), |v| (v.version, v.value));
        if state.done {
            return Ok(Started::AlreadyDone);
        }
        state.owner = format!("{}#{}", job.consumer(), job.deliveries);
        let mut run = Run {
            job,
            scope,
            message_id,
            text,
            next_seq: 1,
            state,
            version,
            deadline,
            stores,
        };
        run.save().await?;
        Ok(Started::Run(Box::new(run)))
    }

    /// The job.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The user's scope.
    pub fn scope(&self) -> &UserScope {
        &self.scope
    }

    /// The client's message id.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// The message text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Highest sequence number an earlier attempt delivered (0 on the first attempt).
    pub fn delivered(&self) -> u64 {
        self.state.delivered
    }

    /// When the run's budget ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Emits `agent_thinking` with `text`.
    pub async fn thinking(&mut self, text: &str) -> Result<(), AgentError> {
        self.emit(AGENT_THINKING, json_map(json!({ "text": text })))
            .await
    }

    /// Emits a progress event (one of [`PROGRESS_EVENTS`]) with `data`; `job`, `seq` and
    /// `message_id` are added (and override fields of the same name).
    pub async fn emit(&mut self, name: &str, data: Map<String, Value>) -> Result<(), AgentError> {
        if !PROGRESS_EVENTS.contains(&name) {
            return Err(AgentError::Failed(format!(
                "agent emitted {name:?}; only {PROGRESS_EVENTS:?} are allowed"
            )));
        }
        self.append(name, data).await
    }

    /// Calls tool `tool` with `input` through the user's rate limit for that tool, framed by
    /// `tool_executing` and `tool_completed`. If an earlier attempt of this run already got
    /// the result, it is reused and `call` is not run again.
    pub async fn tool<F, Fut>(
        &mut self,
        tool: &str,
        input: Value,
        call: F,
    ) -> Result<Value, AgentError>
    where
        F: FnOnce(Value) -> Fut,
        Fut: Future<Output = Result<Value, String>>,
    {
        let call_seq = self.next_seq;
        self.emit(
            TOOL_EXECUTING,
            json_map(json!({ "tool": tool, "input": input.clone() })),
        )
        .await?;
        let result = match self.state.tools.get(&call_seq) {
            Some(result) => result.clone(),
            None => {
                self.wait_for_tool(tool).await?;
                let result = call(input)
                    .await
                    .map_err(|e| AgentError::Failed(format!("tool {tool}: {e}")))?;
                self.state.tools.insert(call_seq, result.clone());
                self.save().await?;
                result
            }
        };
        self.emit(
            TOOL_COMPLETED,
            json_map(json!({ "tool": tool, "result": result.clone() })),
        )
        .await?;
        Ok(result)
    }

    /// Waits until the user's limit for `tool` allows one more call (or the run's deadline).
    async fn wait_for_tool(&mut self, tool: &str) -> Result<(), AgentError> {
        let limit = Limit::new(
            &format!("tool-{tool}"),
            self.stores.tool_rate,
            Duration::from_secs(1),
        )
        .with_burst(self.stores.tool_burst);
        loop {
            let decision = retry::until(self.deadline, || {
                self.stores.limiter.check(&self.scope, &limit)
            })
            .await?;
            if decision.allowed {
                return Ok(());
            }
            if Instant::now() + decision.retry_after >= self.deadline {
                return Err(AgentError::Failed(format!(
                    "tool {tool}: rate limited beyond the run's deadline"
                )));
            }
            tracing::debug!(tool, retry_after = ?decision.retry_after, "tool call rate limited; waiting");
            tokio::time::sleep(decision.retry_after).await;
        }
    }

    /// Emits `agent_started` with the message's `text`, so the user's event log is the
    /// whole conversation (a chat page rebuilds it from a replay).
    pub(crate) async fn begin(&mut self) -> Result<(), AgentError> {
        let data = json_map(json!({ "text": self.text }));
        self.append(AGENT_STARTED, data).await
    }

    /// Emits the end of the run (`agent_completed` or `agent_failed`), at most once per job.
    pub(crate) async fn finish(
        &mut self,
        name: &str,
        data: Map<String, Value>,
    ) -> Result<(), AgentError> {
        let deadline = Instant::now() + TERMINAL_BUDGET;
        let seq = self.next_seq.max(self.state.delivered + 1);
        emit_terminal(
            &self.stores,
            &self.scope,
            &self.job.id,
            &self.message_id,
            seq,
            name,
            data,
            deadline,
        )
        .await?;
        self.state.delivered = seq;
        self.state.done = true;
        self.deadline = deadline;
        // Best effort: if this is lost, a repeated run redoes the work and emits duplicates,
        // which are dropped.
        if let Err(err) = self.save().await {
            tracing::debug!(job = %self.job.id, cause = %err, "could not mark run done");
        }
        Ok(())
    }

    async fn append(&mut self, name: &str, data: Map<String, Value>) -> Result<(), AgentError> {
        let seq = self.next_seq;
        let raw = event_data(&self.job.id, seq, &self.message_id, data)?;
        let appended = retry::until(self.deadline, || {
            self.stores
                .events
                .append_once(&self.scope, name, &raw, &self.job.id, seq)
        })
        .await?;
        self.next_seq += 1;
        if !appended.duplicate && seq > self.state.delivered {
            self.state.delivered = seq;
            self.save().await?;
        }
        Ok(())
    }

    /// Writes the state if nobody else did since we read it.
    async fn save(&mut self) -> Result<(), AgentError> {
        let mut had_transient = false;
        let mut backoff = retry::backoff();
        loop {
            match self
                .stores
                .state
                .put(&self.scope, &self.job.id, self.version, &self.state)
                .await
            {
                Ok(version) => {
                    self.version = version;
                    return Ok(());
                }
                // A write that timed out may have landed: if what is stored is ours, it did.
                Err(redis_ssot::Error::Conflict { current, .. }) if had_transient => {
                    let stored = retry::until(self.deadline, || {
                        self.stores.state.get::<RunState>(&self.scope, &self.job.id)
                    })
                    .await?;
                    return match stored {
                        Some(v) if v.version == current && v.value == self.state => {
                            self.version = current;
                            Ok(())
                        }
                        _ => Err(AgentError::Superseded),
                    };
                }
                Err(redis_ssot::Error::Conflict { .. }) => return Err(AgentError::Superseded),
                Err(err) if err.is_transient() => {
                    had_transient = true;
                    let pause = backoff.pause_at_least(err.retry_after());
                    if Instant::now() + pause >= self.deadline {
                        return Err(err.into());
                    }
                    tokio::time::sleep(pause).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// Appends the end of a run (de-duplicated per job by [`TERMINAL`]).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn emit_terminal(
    stores: &RunStores,
    scope: &UserScope,
    job_id: &str,
    message_id: &str,
    seq: u64,
    name: &str,
    data: Map<String, Value>,
    deadline: Instant,
) -> Result<(), AgentError> {
    let raw = event_data(job_id, seq, message_id, data)?;
    retry::until(deadline, || {
        stores
            .events
            .append_once(scope, name, &raw, job_id, TERMINAL)
    })
    .await?;
    Ok(())
}

/// The highest sequence number delivered for `job_id`, from its run state.
pub(crate) async fn delivered(
    stores: &RunStores,
    scope: &UserScope,
    job_id: &str,
    deadline: Instant,
) -> Result<u64, AgentError> {
    let stored = retry::until(deadline, || stores.state.get::<RunState>(scope, job_id)).await?;
    Ok(stored.map_or(0, |v| v.value.delivered))
}

fn event_data(
    job_id: &str,
    seq: u64,
    message_id: &str,
    mut data: Map<String, Value>,
) -> Result<Box<RawValue>, AgentError> {
    data.insert("job".into(), job_id.into());
    data.insert("seq".into(), seq.into());
    data.insert("message_id".into(), message_id.into());
    let text = serde_json::to_string(&data).map_err(redis_ssot::Error::from)?;
    Ok(RawValue::from_string(text).map_err(redis_ssot::Error::from)?)
}

/// `text` with the userinfo of every URL in it (`scheme://user:password@host`) replaced by
/// `***`, for logs and dead letters.
pub(crate) fn redact_credentials(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("://") {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace; userinfo is what comes
        // before its last '@'.
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out.into()
}

/// The object inside `value` (empty for anything else).
pub(crate) fn json_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_credentials;

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact_credentials(
                "connecting to http://svc-user:hunter2-secret@10.0.0.1:80/run: refused"
            ),
            "connecting to http://***@10.0.0.1:80/run: refused"
        );
        assert_eq!(
            redact_credentials("a http://u:p@x and redis://:pw@y:6379 and https://z/a@b"),
            "a http://***@x and redis://***@y:6379 and https://z/a@b"
        );
        assert_eq!(redact_credentials("no url here"), "no url here");
        assert_eq!(redact_credentials("ends with ://"), "ends with ://");
    }
}
