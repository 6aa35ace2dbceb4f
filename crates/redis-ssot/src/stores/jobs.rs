//! The job queue: a stream with a consumer group, idempotent enqueue, reclaim of jobs whose
//! worker died, and a dead-letter stream.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{Script, Value};

use crate::error::{Error, Result};
use crate::keys::{self, QueueKeys, UserId};
use crate::manager::RedisManager;

/// Consumer group of [`JobsConfig::default`].
pub const DEFAULT_GROUP: &str = "workers";
/// Deliveries of one job before it is dead-lettered, in [`JobsConfig::default`].
pub const DEFAULT_MAX_DELIVERIES: u64 = 5;
/// How long an idempotency key is remembered, in [`JobsConfig::default`].
pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Approximate bound of the dead-letter stream, in [`JobsConfig::default`].
pub const DEFAULT_DEAD_LETTER_MAX_LEN: u64 = 10_000;
/// Jobs a queue (each partition) holds before it refuses more, in [`JobsConfig::default`]:
/// at a few KiB per chat job, about 100-800 MiB of Redis memory at the bound.
pub const DEFAULT_MAX_LEN: u64 = 100_000;

/// The idle time a failed job is given, so that the next [`Jobs::reclaim`] takes it whatever
/// its `min_idle` (up to this).
const FAILED_IDLE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Moves one pending job to the dead-letter stream, with the fields it was enqueued with, and
/// removes it from the queue. Shared by the scripts below; KEYS[1] the stream, KEYS[2] the
/// dead letters. Returns `{dead_id, job_id, deliveries, reason, {fields}}`.
const BURY_LUA: &str = r"
local function bury(group, id, deliveries, reason, max_len)
  local entry = redis.call('XRANGE', KEYS[1], id, id)
  local fields = {}
  if entry[1] then fields = entry[1][2] end
  local args = {KEYS[2], 'MAXLEN', '~', max_len, '*',
    'job', id, 'deliveries', deliveries, 'error', reason}
  for _, v in ipairs(fields) do args[#args + 1] = v end
  local dead_id = redis.call('XADD', unpack(args))
  redis.call('XACK', KEYS[1], group, id)
  redis.call('XDEL', KEYS[1], id)
  return {dead_id, id, deliveries, reason, fields}
end
";

/// Adds a job, once per idempotency key, unless the backlog is full. KEYS[1] the stream,
/// KEYS[2] the idempotency marker (absent without a key); ARGV user, kind, payload,
/// idempotency key, marker TTL in ms, max length. Returns `{job_id, 0}` when added,
/// `{job_id, 1}` for a duplicate (answered even when full: a retry of an accepted job),
/// `{'', 2}` when the stream holds max length entries already.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if KEYS[2] then
  local existing = redis.call('GET', KEYS[2])
  if existing then
    return {existing, 1}
  end
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[6]) then
  return {'', 2}
end
local id
if KEYS[2] then
  id = redis.call('XADD', KEYS[1], '*',
    'user', ARGV[1], 'kind', ARGV[2], 'payload', ARGV[3], 'idem', ARGV[4])
  redis.call('SET', KEYS[2], id, 'PX', ARGV[5])
else
  id = redis.call('XADD', KEYS[1], '*', 'user', ARGV[1], 'kind', ARGV[2], 'payload', ARGV[3])
end
return {id, 0}
",
    )
});

/// Acknowledges and deletes a job. KEYS[1] the stream; ARGV group, job id.
static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return acked
",
    )
});

/// Records a failed delivery. ARGV group, consumer, job id, error, max deliveries, dead-letter
/// max length, idle to set for a retry (ms). Returns `{0, nil}` when the job is no longer
/// pending for this consumer, `{1, nil}` when it will be retried, `{2, dead}` when it was
/// dead-lettered.
static FAIL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{BURY_LUA}{}",
        r"
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #pending == 0 or pending[1][2] ~= ARGV[2] then
  return {0, false}
end
local deliveries = pending[1][4]
if deliveries < tonumber(ARGV[5]) then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[7], 'JUSTID')
  return {1, false}
end
return {2, bury(ARGV[1], ARGV[3], deliveries, ARGV[4], ARGV[6])}
"
    ))
});

/// Takes over jobs idle longer than a bound, dead-lettering those delivered too often.
/// ARGV group, consumer, min idle (ms), cursor, count, max deliveries, dead-letter max length.
/// Returns `{next_cursor, {{id, deliveries, {fields}}...}, {dead...}}`.
static RECLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{BURY_LUA}{}",
        r"
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  'COUNT', ARGV[5])
local jobs, dead = {}, {}
for _, entry in ipairs(claimed[2]) do
  local id = entry[1]
  if type(entry[2]) ~= 'table' then
    -- Deleted from the stream while pending (Redis 6.2 reports these here).
    redis.call('XACK', KEYS[1], ARGV[1], id)
  else
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    local deliveries = pending[1][4]
    if deliveries > tonumber(ARGV[6]) then
      local reason = 'abandoned: delivered ' .. (deliveries - 1) ..
        ' times without ack (worker died or timed out)'
      dead[#dead + 1] = bury(ARGV[1], id, deliveries - 1, reason, ARGV[7])
    else
      jobs[#jobs + 1] = {id, deliveries, entry[2]}
    end
  end
end
return {claimed[1], jobs, dead}
"
    ))
});

/// Settings of one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsConfig {
    /// The consumer group all workers of the queue share.
    pub group: String,
    /// Deliveries of one job (first claim, reclaims, retries after [`Jobs::fail`]) before it
    /// goes to the dead-letter stream. At least 1.
    pub max_deliveries: u64,
    /// How long an idempotency key is remembered after its job was enqueued.
    pub idempotency_ttl: Duration,
    /// Approximate bound of the dead-letter stream (oldest dropped first).
    pub dead_letter_max_len: u64,
    /// Most jobs the stream holds, waiting or in flight (acked jobs are deleted). An enqueue
    /// beyond it fails with [`Error::QueueFull`]; at least 1.
    ///
    /// Why refuse instead of `XADD MAXLEN ~`: trimming drops the oldest entries whether or
    /// not a worker has seen them, so a job the enqueuer was told was accepted (the client
    /// got its ack) could vanish without a trace while no worker runs. Refusing keeps every
    /// acknowledged job and tells the sender at once, who can retry later; the check and the
    /// `XADD` are one script, so concurrent enqueues never overshoot.
    pub max_len: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            group: DEFAULT_GROUP.to_owned(),
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            idempotency_ttl: DEFAULT_IDEMPOTENCY_TTL,
            dead_letter_max_len: DEFAULT_DEAD_LETTER_MAX_LEN,
            max_len: DEFAULT_MAX_LEN,
        }
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// The user the job works for.
    pub user: UserId,
    /// What to do (`chat`, `nightly-report`...); a name as checked by [`keys::check_name`].
    pub kind: String,
    /// Input of the job.
    pub payload: serde_json::Value,
    /// Enqueue at most once per user and key while the key is remembered (e.g. the client's
    /// message id).
    pub idempotency_key: Option<String>,
}

/// The result of [`Jobs::enqueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// The job id (the stream entry id).
    pub id: String,
    /// True when the idempotency key was seen before: `id` is the job enqueued then, and
    /// nothing was added.
    pub duplicate: bool,
}

/// A job handed to a consumer, to [`ack`](Jobs::ack) or [`fail`](Jobs::fail).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The job id: stable across deliveries.
    pub id: String,
    /// The user the job works for.
    pub user: UserId,
    /// What to do.
    pub kind: String,
    /// Input of the job.
    pub payload: serde_json::Value,
    /// The idempotency key it was enqueued with.
    pub idempotency_key: Option<String>,
    /// How many times it has been handed out, this time included (1 on first claim).
    pub deliveries: u64,
    /// The consumer it was handed to.
    consumer: String,
}

impl Job {
    /// The consumer this delivery went to.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }
}

/// A job moved to the dead-letter stream.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The entry id in the dead-letter stream.
    pub id: String,
    /// The job id it had in the queue.
    pub job_id: String,
    /// The user, when the job named a valid one.
    pub user: Option<UserId>,
    /// What the job was to do (empty if unknown).
    pub kind: String,
    /// Input of the job (`null` if unreadable).
    pub payload: serde_json::Value,
    /// Its idempotency key.
    pub idempotency_key: Option<String>,
    /// How many times it had been handed out.
    pub deliveries: u64,
    /// Why it was dead-lettered: the error of the last failure, or why it was abandoned.
    pub error: String,
}

/// The result of [`Jobs::fail`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FailOutcome {
    /// The job stays in the queue and is handed out again by the next [`Jobs::reclaim`].
    Retry,
    /// The job used up its deliveries and is now a dead letter (this call moved it, and no
    /// other call will).
    DeadLettered(DeadLetter),
    /// This consumer no longer holds the job (it was acked, reclaimed by another consumer or
    /// dead-lettered); nothing changed.
    NotHeld,
}

/// What one [`Jobs::reclaim`] call took over.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reclaimed {
    /// Jobs now held by the calling consumer.
    pub jobs: Vec<Job>,
    /// Jobs that had used up their deliveries and were moved to the dead-letter stream by
    /// this call (reported once, here).
    pub dead_lettered: Vec<DeadLetter>,
}

/// A job queue on a stream with a consumer group.
///
/// ## Behavior
/// - Keys `ssot:{jobs:<queue>}:stream`, `:dead` and `:idem:<user>:<key>` share one hash tag,
///   so each script below is legal on a Cluster.
/// - [`enqueue`](Self::enqueue) with an idempotency key adds the job at most once per user and
///   key while the key is remembered (one script: marker check, `XADD`, marker `SET PX`);
///   a repeat returns the first job's id with `duplicate: true`.
/// - The stream is bounded by refusal, never by trimming: an enqueue that finds `max_len`
///   jobs waiting or in flight fails with [`Error::QueueFull`], so no accepted job is ever
///   dropped unseen (see [`JobsConfig::max_len`]).
/// - [`claim`](Self::claim) hands out new jobs with `XREADGROUP` (blocking on the manager's
///   blocking pool). The group is created (`MKSTREAM`, from the start of the stream) on first
///   use and again if Redis lost it, e.g. after a restart without persistence.
/// - A claimed job stays pending until [`ack`](Self::ack) (which also deletes it). If its
///   worker dies, [`reclaim`](Self::reclaim) by any consumer takes it over once it has been
///   idle for `min_idle`, and hands it out again.
/// - [`fail`](Self::fail) makes the job available to the next reclaim at once, until it has
///   been handed out `max_deliveries` times; the failure after that moves it to the
///   dead-letter stream with its error. A job whose workers keep dying is dead-lettered by the
///   reclaim that would hand it out for the `max_deliveries + 1`-th time. Either way the move
///   is atomic with the ack, so each job is dead-lettered exactly once.
/// - Cheap to clone (clones share the group state and the reclaim cursor); opens no
///   connection.
#[derive(Debug, Clone)]
pub struct Jobs {
    manager: RedisManager,
    queue: String,
    keys: QueueKeys,
    config: JobsConfig,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// True once the consumer group is known to exist.
    group_ready: AtomicBool,
    /// Where the next `XAUTOCLAIM` continues its scan of the pending entries.
    reclaim_cursor: Mutex<String>,
}

/// Parsed `{id, deliveries, {fields}}` from the reclaim script.
type ClaimedRow = (String, u64, Vec<String>);
/// Parsed `{dead_id, job_id, deliveries, reason, {fields}}` from the bury function.
type DeadRow = (String, String, u64, String, Vec<String>);

impl Jobs {
    /// The queue `queue` on `manager` with default settings.
    pub fn new(manager: RedisManager, queue: &str) -> Result<Jobs> {
        Jobs::with_config(manager, queue, JobsConfig::default())
    }

    /// The queue `queue` on `manager` with `config`.
    pub fn with_config(manager: RedisManager, queue: &str, config: JobsConfig) -> Result<Jobs> {
        let keys = keys::queue(queue, 0)?;
        keys::check_name("consumer group", &config.group)?;
        if config.max_deliveries == 0 {
            return Err(Error::invalid(
                "jobs config",
                "max_deliveries must be at least 1",
            ));
        }
        if config.max_len == 0 {
            return Err(Error::invalid("jobs config", "max_len must be at least 1"));
        }
        Ok(Jobs {
            manager,
            queue: queue.to_owned(),
            keys,
            config,
            shared: Arc::new(Shared {
                group_ready: AtomicBool::new(false),
                reclaim_cursor: Mutex::new("0-0".to_owned()),
            }),
        })
    }

    /// The queue's name.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The settings in force.
    pub fn config(&self) -> &JobsConfig {
        &self.config
    }

    /// Adds a job, once per idempotency key (see [`NewJob::idempotency_key`]). Fails with
    /// [`Error::QueueFull`] when the queue holds [`JobsConfig::max_len`] jobs already; a
    /// repeat of an accepted idempotency key still answers its first job.
    pub async fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        keys::check_name("job kind", &job.kind)?;
        let payload = serde_json::to_string(&job.payload)?;
        let mut script = ENQUEUE.key(&self.keys.stream);
        if let Some(idem) = &job.idempotency_key {
            keys::check_name("idempotency key", idem)?;
            // User ids hold no ':', so `<user>:<key>` cannot collide across users.
            script.key(format!(
                "{}{}:{idem}",
                self.keys.idempotency_prefix, job.user
            ));
        }
        script
            .arg(job.user.as_str())
            .arg(&job.kind)
            .arg(&payload)
            .arg(job.idempotency_key.as_deref().unwrap_or_default())
            .arg(millis(self.config.idempotency_ttl))
            .arg(self.config.max_len);
        let (id, status): (String, u8) = self.manager.run_script(&script).await?;
        if status == 2 {
            return Err(Error::QueueFull {
                queue: self.queue.clone(),
                max_len: self.config.max_len,
            });
        }
        Ok(Enqueued {
            id,
            duplicate: status == 1,
        })
    }

    /// Hands up to `count` new jobs to `consumer`, waiting up to `block` for the first one
    /// (not at all for a zero `block`). An empty result means none arrived in time.
    pub async fn claim(&self, consumer: &str, count: usize, block: Duration) -> Result<Vec<Job>> {
        keys::check_name("consumer", consumer)?;
        let reply: Option<StreamReadReply> = self
            .with_group(move || async move {
                let mut cmd = redis::cmd("XREADGROUP");
                cmd.arg("GROUP")
                    .arg(&self.config.group)
                    .arg(consumer)
                    .arg("COUNT")
                    .arg(count.max(1));
                if block.is_zero() {
                    cmd.arg("STREAMS").arg(&self.keys.stream).arg(">");
                    self.manager.query(&cmd).await
                } else {
                    cmd.arg("BLOCK")
                        .arg(millis(block))
                        .arg("STREAMS")
                        .arg(&self.keys.stream)
                        .arg(">");
                    self.manager.query_blocking(&cmd, block).await
                }
            })
            .await?;
        let entries = reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids);
        let mut jobs = Vec::new();
        for entry in entries {
            let id = entry.id.clone();
            match job_from_fields(id.clone(), 1, consumer, fields_of(entry)) {
                Ok(job) => jobs.push(job),
                Err(reason) => {
                    self.bury_malformed(consumer, &id, &reason).await?;
                }
            }
        }
        Ok(jobs)
    }

    /// Takes over, for `consumer`, up to `count` jobs that have been pending (claimed but not
    /// acked) for at least `min_idle`, e.g. because their worker died. Jobs delivered
    /// `max_deliveries` times already are dead-lettered instead and reported in
    /// [`Reclaimed::dead_lettered`].
    ///
    /// Each call scans a part of the pending list, continuing where the previous call of this
    /// store (or a clone) stopped; call it periodically.
    pub async fn reclaim(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Reclaimed> {
        keys::check_name("consumer", consumer)?;
        let cursor = self.cursor().clone();
        let cursor = cursor.as_str();
        let (next, rows, dead): (String, Vec<ClaimedRow>, Vec<DeadRow>) = self
            .with_group(move || async move {
                let mut script = RECLAIM.key(&self.keys.stream);
                script
                    .key(&self.keys.dead)
                    .arg(&self.config.group)
                    .arg(consumer)
                    .arg(millis(min_idle))
                    .arg(cursor)
                    .arg(count.max(1))
                    .arg(self.config.max_deliveries)
                    .arg(self.config.dead_letter_max_len);
                self.manager.run_script(&script).await
            })
            .await?;
        *self.cursor() = next;
        let mut reclaimed = Reclaimed {
            dead_lettered: dead.into_iter().map(dead_letter_from_row).collect(),
            ..Reclaimed::default()
        };
        for (id, deliveries, fields) in rows {
            match job_from_fields(id.clone(), deliveries, consumer, pairs(fields)) {
                Ok(job) => reclaimed.jobs.push(job),
                Err(reason) => {
                    if let Some(dead) = self.bury_malformed(consumer, &id, &reason).await? {
                        reclaimed.dead_lettered.push(dead);
                    }
                }
            }
        }
        Ok(reclaimed)
    }

    /// Marks `job` done and removes it from the queue. False if it was no longer pending
    /// (already acked, or dead-lettered).
    pub async fn ack(&self, job: &Job) -> Result<bool> {
        let acked: u64 = self
            .manager
            .run_script(
                ACK.key(&self.keys.stream)
                    .arg(&self.config.group)
                    .arg(&job.id),
            )
            .await?;
        Ok(acked > 0)
    }

    /// Records that `job` failed with `error`: it is retried (handed out again by the next
    /// reclaim) unless it has been handed out `max_deliveries` times, in which case it moves
    /// to the dead-letter stream with `error`.
    pub async fn fail(&self, job: &Job, error: &str) -> Result<FailOutcome> {
        self.fail_with_limit(&job.consumer, &job.id, error, self.config.max_deliveries)
            .await
    }

    /// Up to `count` dead letters, oldest first.
    pub async fn dead_letters(&self, count: usize) -> Result<Vec<DeadLetter>> {
        let reply: StreamRangeReply = self
            .manager
            .query(
                redis::cmd("XRANGE")
                    .arg(&self.keys.dead)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(count.max(1)),
            )
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .map(|entry| {
                let id = entry.id.clone();
                let mut fields = fields_of(entry);
                let job_id = fields.remove("job").unwrap_or_default();
                let deliveries = fields
                    .remove("deliveries")
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0);
                let error = fields.remove("error").unwrap_or_default();
                dead_letter(id, job_id, deliveries, error, fields)
            })
            .collect())
    }

    /// How many jobs are claimed and not yet acked.
    pub async fn pending(&self) -> Result<u64> {
        let summary: Vec<Value> = self
            .with_group(move || async move {
                self.manager
                    .query(
                        redis::cmd("XPENDING")
                            .arg(&self.keys.stream)
                            .arg(&self.config.group),
                    )
                    .await
            })
            .await?;
        Ok(summary
            .into_iter()
            .next()
            .and_then(|count| redis::from_redis_value(count).ok())
            .unwrap_or(0))
    }

    async fn fail_with_limit(
        &self,
        consumer: &str,
        id: &str,
        error: &str,
        max_deliveries: u64,
    ) -> Result<FailOutcome> {
        let (outcome, dead): (u8, Option<DeadRow>) = self
            .with_group(move || async move {
                let mut script = FAIL.key(&self.keys.stream);
                script
                    .key(&self.keys.dead)
                    .arg(&self.config.group)
                    .arg(consumer)
                    .arg(id)
                    .arg(error)
                    .arg(max_deliveries)
                    .arg(self.config.dead_letter_max_len)
                    .arg(millis(FAILED_IDLE));
                self.manager.run_script(&script).await
            })
            .await?;
        Ok(match (outcome, dead) {
            (1, _) => FailOutcome::Retry,
            (2, Some(row)) => FailOutcome::DeadLettered(dead_letter_from_row(row)),
            _ => FailOutcome::NotHeld,
        })
    }

    /// Dead-letters an entry that is not a valid job, so it does not come back forever.
    async fn bury_malformed(
        &self,
        consumer: &str,
        id: &str,
        reason: &str,
    ) -> Result<Option<DeadLetter>> {
        tracing::warn!(queue = %self.queue, job = id, reason, "malformed job dead-lettered");
        let reason = format!("malformed job: {reason}");
        Ok(
            match self.fail_with_limit(consumer, id, &reason, 0).await? {
                FailOutcome::DeadLettered(dead) => Some(dead),
                _ => None,
            },
        )
    }

    /// Runs `op`, first creating the consumer group if this store has not seen it yet, and
    /// again (once) if Redis says the group does not exist.
    async fn with_group<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if !self.shared.group_ready.load(Ordering::Acquire) {
            self.create_group().await?;
        }
        match op().await {
            Err(err) if is_no_group(&err) => {
                self.shared.group_ready.store(false, Ordering::Release);
                self.create_group().await?;
                op().await
            }
            other => other,
        }
    }

    async fn create_group(&self) -> Result<()> {
        let created: Result<()> = self
            .manager
            .query(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(&self.keys.stream)
                    .arg(&self.config.group)
                    .arg("0")
                    .arg("MKSTREAM"),
            )
            .await;
        match created {
            Ok(()) => {}
            Err(Error::Redis(err)) if err.code() == Some("BUSYGROUP") => {}
            Err(err) => return Err(err),
        }
        self.shared.group_ready.store(true, Ordering::Release);
        Ok(())
    }

    fn cursor(&self) -> std::sync::MutexGuard<'_, String> {
        self.shared
            .reclaim_cursor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

fn is_no_group(err: &Error) -> bool {
    // Inside a script Redis may prefix the code, so look at the whole message too.
    matches!(err, Error::Redis(e) if e.code() == Some("NOGROUP") || e.to_string().contains("NOGROUP"))
}

fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

/// Field/value pairs of a stream entry, as strings.
fn fields_of(entry: StreamId) -> HashMap<String, String> {
    entry
        .map
        .into_iter()
        .filter_map(|(k, v)| redis::from_redis_value::<String>(v).ok().map(|v| (k, v)))
        .collect()
}

/// `[f1, v1, f2, v2, ...]` as a map.
fn pairs(flat: Vec<String>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    map
}

fn job_from_fields(
    id: String,
    deliveries: u64,
    consumer: &str,
    mut fields: HashMap<String, String>,
) -> std::result::Result<Job, String> {
    let user = fields.remove("user").ok_or("no user field")?;
    let user = UserId::new(&user).map_err(|e| e.to_string())?;
    let kind = fields.remove("kind").ok_or("no kind field")?;
    let payload = fields.remove("payload").ok_or("no payload field")?;
    let payload = serde_json::from_str(&payload).map_err(|e| format!("payload: {e}"))?;
    Ok(Job {
        id,
        user,
        kind,
        payload,
        idempotency_key: fields.remove("idem"),
        deliveries,
        consumer: consumer.to_owned(),
    })
}

fn dead_letter_from_row((id, job_id, deliveries, error, fields): DeadRow) -> DeadLetter {
    dead_letter(id, job_id, deliveries, error, pairs(fields))
}

fn dead_letter(
    id: String,
    job_id: String,
    deliveries: u64,
    error: String,
    mut fields: HashMap<String, String>,
) -> DeadLetter {
    DeadLetter {
        id,
        job_id,
        user: fields.remove("user").and_then(|u| UserId::new(&u).ok()),
        kind: fields.remove("kind").unwrap_or_default(),
        payload: fields
            .remove("payload")
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or(serde_json::Value::Null),
        idempotency_key: fields.remove("idem"),
        deliveries,
        error,
    }
}
