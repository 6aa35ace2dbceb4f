//! Periodic jobs run once per tick across all workers, under a fenced lease lock.
//!
//! ## Behavior
//! - Tick `n` of a job with period `every` starts at Unix time `n * every` (wall clock), so
//!   all workers agree on tick numbers without talking to each other.
//! - At each tick every worker tries to take the lock `schedule:<name>` for the tick with a
//!   lease ending at `tick start + lease`; the lock is not released after the run, so the
//!   lease covers the whole tick and nobody else runs it. Attempts are made only during the
//!   first two thirds of the lease; a worker later than that skips the tick. So each tick runs
//!   at most once as long as worker clocks agree to within a third of the lease, and the
//!   lease has run out before the next tick starts (`lease < every`).
//! - The job gets the lock's fencing token, which strictly increases from tick to tick, and
//!   is cut off when the lease ends.
//! - [`Heartbeat`] is the built-in job: it appends every run it is handed, `(tick, token,
//!   worker)`, to `ssot:{schedule:<name>}:runs` (a stream, read with [`Heartbeat::runs`]) and
//!   refuses a token not greater than the last accepted one — fencing as the protected
//!   resource does it. A refused run is recorded too, marked, so a stale lock holder or a tick
//!   run twice shows in the record, not only in a log line.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis_ssot::RedisManager;
use redis_ssot::redis::Script;
use redis_ssot::stores::lock::Locks;
use tokio::sync::watch;

use crate::config::ScheduleConfig;

/// Name of the built-in [`Heartbeat`] job.
pub const HEARTBEAT: &str = "heartbeat";
/// Runs kept per heartbeat (approximate).
const HEARTBEAT_MAX_LEN: u64 = 10_000;
/// Pause between attempts to take a tick's lock while Redis fails.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// One run of a periodic job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    /// The job's name.
    pub name: String,
    /// The tick number (`unix ms / every ms`).
    pub tick: u64,
    /// The fencing token of this tick's lock: greater than any earlier tick's.
    pub token: u64,
    /// The worker (consumer name) running it.
    pub worker: String,
}

/// The future a [`ScheduledJob`] returns.
pub type ScheduledFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A periodic job. It should pass `tick.token` to whatever it changes, and that should
/// refuse tokens not greater than the last one it saw (see [`Heartbeat`]).
pub trait ScheduledJob: Send + Sync + 'static {
    /// Runs the job for one tick.
    fn run<'a>(&'a self, tick: &'a Tick) -> ScheduledFuture<'a>;
}

/// Records a run, accepted if its token is newer than the last accepted one. KEYS[1] runs
/// stream, KEYS[2] last-run hash; ARGV tick, token, worker, max len. Returns `{1, token}` or
/// `{0, last accepted token}`.
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local last = redis.call('HGET', KEYS[2], 'token')
local accepted = (not last) or tonumber(last) < tonumber(ARGV[2])
if accepted then
  redis.call('HSET', KEYS[2], 'tick', ARGV[1], 'token', ARGV[2], 'worker', ARGV[3])
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'tick', ARGV[1], 'token', ARGV[2],
  'worker', ARGV[3], 'refused', accepted and '0' or '1')
if accepted then
  return {1, ARGV[2]}
end
return {0, last}
",
    )
});

/// One recorded heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRun {
    /// The tick.
    pub tick: u64,
    /// Its fencing token.
    pub token: u64,
    /// The worker that ran it.
    pub worker: String,
    /// True when its token was not greater than the last accepted one: the run was refused
    /// and changed nothing.
    pub refused: bool,
}

/// The built-in periodic job: records each run, fenced, so operators and tests can see them.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    manager: RedisManager,
}

impl Heartbeat {
    /// A heartbeat on `manager`.
    pub fn new(manager: RedisManager) -> Heartbeat {
        Heartbeat { manager }
    }

    // The keys of a periodic job's record. They live here rather than in redis-ssot's key
    // schema because only this job writes them; the hash tag keeps them in one slot.
    fn keys(name: &str) -> redis_ssot::Result<(String, String)> {
        redis_ssot::keys::check_name("scheduled job", name)?;
        let base = format!("{}:{{schedule:{name}}}", redis_ssot::keys::PREFIX);
        Ok((format!("{base}:runs"), format!("{base}:last")))
    }

    /// Up to `count` recorded runs of the job `name`, refused ones included, oldest first.
    pub async fn runs(&self, name: &str, count: usize) -> redis_ssot::Result<Vec<HeartbeatRun>> {
        let (runs, _) = Heartbeat::keys(name)?;
        let entries: Vec<(String, Vec<(String, String)>)> = self
            .manager
            .query(
                redis_ssot::redis::cmd("XRANGE")
                    .arg(&runs)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(count.max(1)),
            )
            .await?;
        Ok(entries
            .into_iter()
            .map(|(_, fields)| {
                let field = |name: &str| {
                    fields
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                HeartbeatRun {
                    tick: field("tick").parse().unwrap_or(0),
                    token: field("token").parse().unwrap_or(0),
                    worker: field("worker"),
                    refused: field("refused") == "1",
                }
            })
            .collect())
    }

    async fn record(&self, tick: &Tick) -> Result<(), String> {
        let (runs, last) = Heartbeat::keys(&tick.name).map_err(|e| e.to_string())?;
        let (recorded, latest): (u8, String) = self
            .manager
            .run_script(
                RECORD
                    .key(&runs)
                    .key(&last)
                    .arg(tick.tick)
                    .arg(tick.token.to_string())
                    .arg(&tick.worker)
                    .arg(HEARTBEAT_MAX_LEN),
            )
            .await
            .map_err(|e| e.to_string())?;
        if recorded == 1 {
            Ok(())
        } else {
            Err(format!(
                "fencing token {} refused: {latest} was recorded already",
                tick.token
            ))
        }
    }
}

impl ScheduledJob for Heartbeat {
    fn run<'a>(&'a self, tick: &'a Tick) -> ScheduledFuture<'a> {
        Box::pin(self.record(tick))
    }
}

/// Runs `job` on its schedule until `stop` turns true.
pub(crate) async fn run_schedule(
    manager: RedisManager,
    entry: ScheduleConfig,
    job: Arc<dyn ScheduledJob>,
    worker: String,
    mut stop: watch::Receiver<bool>,
) {
    let locks = Locks::new(manager);
    let lock = format!("schedule:{}", entry.name);
    let every = entry.every.as_millis() as u64;
    let lease = entry.lease.as_millis() as u64;
    let window = (lease * 2 / 3).max(1);
    let mut done_tick = None;
    let mut failing = false;
    while !*stop.borrow() {
        let now = redis_ssot::clock::unix_ms();
        let tick = now / every;
        let start = tick * every;
        if done_tick == Some(tick) || now >= start + window {
            let next = start + every;
            sleep_or_stop(Duration::from_millis(next - now), &mut stop).await;
            continue;
        }
        let lease_left = Duration::from_millis(start + lease - now);
        match locks.acquire(&lock, &worker, lease_left).await {
            Ok(Some(held)) => {
                done_tick = Some(tick);
                failing = false;
                let run = Tick {
                    name: entry.name.clone(),
                    tick,
                    token: held.token,
                    worker: worker.clone(),
                };
                let left = held
                    .expires_at
                    .saturating_duration_since(tokio::time::Instant::now());
                match tokio::time::timeout(left, job.run(&run)).await {
                    Ok(Ok(())) => {
                        tracing::debug!(job = %entry.name, tick, token = run.token, "scheduled job ran")
                    }
                    Ok(Err(reason)) => {
                        tracing::warn!(job = %entry.name, tick, token = run.token, reason, "scheduled job failed")
                    }
                    Err(_) => {
                        tracing::warn!(job = %entry.name, tick, "scheduled job cut off at the end of its lease")
                    }
                }
            }
            Ok(None) => done_tick = Some(tick),
            Err(err) => {
                if !failing {
                    tracing::warn!(job = %entry.name, cause = %err, "cannot take the schedule lock; retrying");
                }
                failing = true;
                sleep_or_stop(RETRY_PAUSE, &mut stop).await;
            }
        }
    }
}

async fn sleep_or_stop(pause: Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        () = tokio::time::sleep(pause) => {}
        _ = stop.changed() => {}
    }
}
