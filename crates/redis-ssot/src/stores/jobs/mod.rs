//! The job queue: streams with a consumer group, idempotent enqueue, reclaim of jobs whose
//! worker died, dead-letter streams, and partitions that spread a queue over Cluster masters.
//!
//! # Layout
//! - this file: [`JobsConfig`] and [`Jobs`], the queue's operations;
//! - `entries`: [`NewJob`], [`Job`], [`DeadLetter`] and the other values it hands in and
//!   out, read from stream entries;
//! - `partition`: one partition's keys and state, and which partition a user maps to;
//! - `commands`: one partition's reads, reclaims and failures, and its consumer group;
//! - `scripts`: the Lua that makes enqueue, fail and reclaim atomic per partition.

mod commands;
mod entries;
mod partition;
mod scripts;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::Value;
use redis::streams::StreamRangeReply;

pub use entries::{DeadLetter, Enqueued, FailOutcome, Job, NewJob, Reclaimed};

use self::entries::{dead_letter, fields_of};
use self::partition::{Partition, partition_of};
use self::scripts::{ACK, ENQUEUE, START};
use crate::error::{Error, Result};
use crate::keys::{self, UserId};
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
/// Partitions of a queue in [`JobsConfig::default`]: one stream, as before partitions.
pub const DEFAULT_PARTITIONS: u32 = 1;
/// Most partitions a queue may have.
pub const MAX_PARTITIONS: u32 = 1024;

/// The idle time a failed job is given, so that the next [`Jobs::reclaim`] takes it whatever
/// its `min_idle` (up to this).
const FAILED_IDLE: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// Longest block of one [`Jobs::claim`] on one partition of a partitioned queue: a job on
/// another partition waits at most about this long to be noticed by an idle consumer.
const PARTITION_BLOCK: Duration = Duration::from_millis(100);

/// Where a job is, as [`Jobs::state`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Enqueued; no worker has started it.
    Queued,
    /// A worker runs it.
    Running,
    /// It ran and was acknowledged.
    Completed,
    /// Its last attempt failed; the next reclaim hands it out again.
    Failed,
    /// Dead-lettered: it failed or was abandoned `max_deliveries` times.
    Dead,
}

impl JobState {
    /// The state's name: `queued`, `running`, `completed`, `failed` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Dead => "dead",
        }
    }

    fn parse(name: &str) -> Option<JobState> {
        Some(match name {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "completed" => JobState::Completed,
            "failed" => JobState::Failed,
            "dead" => JobState::Dead,
            _ => return None,
        })
    }
}

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
    /// Approximate bound of the dead-letter stream (oldest dropped first), per partition.
    pub dead_letter_max_len: u64,
    /// Most jobs one partition's stream holds, waiting or in flight (acked jobs are
    /// deleted). An enqueue beyond it fails with [`Error::QueueFull`]; at least 1.
    ///
    /// Why refuse instead of `XADD MAXLEN ~`: trimming drops the oldest entries whether or
    /// not a worker has seen them, so a job the enqueuer was told was accepted (the client
    /// got its ack) could vanish without a trace while no worker runs. Refusing keeps every
    /// acknowledged job and tells the sender at once, who can retry later; the check and the
    /// `XADD` are one script, so concurrent enqueues never overshoot.
    pub max_len: u64,
    /// Most jobs one user may have in the queue, waiting or in flight: a job counts from
    /// its enqueue until it is acked or dead-lettered. An enqueue beyond it fails with
    /// [`Error::UserQueueFull`], so one user cannot fill the backlog that [`max_len`] bounds
    /// for everyone. `None`: no bound per user (jobs are counted all the same, so a bound
    /// set later sees the jobs already queued). At least 1 when set.
    ///
    /// [`max_len`]: JobsConfig::max_len
    pub max_per_user: Option<u64>,
    /// Streams the queue is split into, 1 to [`MAX_PARTITIONS`]. Each has its own hash tag,
    /// so on a Cluster they spread over the masters; a user's jobs all go to one of them.
    /// Enqueuers and consumers must agree: a consumer with fewer partitions than its
    /// enqueuers never sees the jobs of the others. Changing it moves users to other
    /// partitions: jobs already queued stay where they are (consumers with the larger count
    /// still take them), but order and idempotency hold only within a partition.
    pub partitions: u32,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            group: DEFAULT_GROUP.to_owned(),
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            idempotency_ttl: DEFAULT_IDEMPOTENCY_TTL,
            dead_letter_max_len: DEFAULT_DEAD_LETTER_MAX_LEN,
            max_len: DEFAULT_MAX_LEN,
            max_per_user: None,
            partitions: DEFAULT_PARTITIONS,
        }
    }
}

/// A job queue on streams with a consumer group.
///
/// ## Behavior
/// - Partition 0 has the keys `ssot:{jobs:<queue>}:stream`, `:dead` and
///   `:idem:<user>:<key>`; partition `p > 0` the same under `{jobs:<queue>#<p>}`. Each
///   partition's keys share one hash tag, so each script is legal on a Cluster, and an
///   unpartitioned queue keeps the keys it always had.
/// - A user's jobs all go to partition `FNV-1a(user id) mod partitions`, so they stay in
///   enqueue order; idempotency markers, dead letters and reclaim are per partition.
/// - [`enqueue`](Self::enqueue) with an idempotency key adds the job at most once per user and
///   key while the key is remembered (one script: marker check, `XADD`, marker `SET PX`);
///   a repeat returns the first job's id with `duplicate: true`.
/// - The stream is bounded by refusal, never by trimming: an enqueue that finds `max_len`
///   jobs waiting or in flight fails with [`Error::QueueFull`], so no accepted job is ever
///   dropped unseen (see [`JobsConfig::max_len`]).
/// - Each partition counts its jobs per user (hash `:users`, field the user id), in the
///   same scripts that add and delete them: +1 on enqueue, -1 when ack or dead-lettering
///   deletes the entry. With [`JobsConfig::max_per_user`] an enqueue that finds the user at
///   the bound fails with [`Error::UserQueueFull`].
/// - [`claim`](Self::claim) hands out new jobs with `XREADGROUP`. With one partition it
///   blocks on the manager's blocking pool. With several it first reads every partition
///   without blocking (on the shared command connection, starting from a rotating
///   partition so none starves), and only if all are empty blocks on one of them for at most
///   100 ms: one blocking connection per call whatever the number of partitions. A partition
///   that fails is skipped while others answer. The group is created (`MKSTREAM`, from the
///   start of the stream) on first use and again if Redis lost it, e.g. after a restart
///   without persistence.
/// - A claimed job stays pending until [`ack`](Self::ack) (which also deletes it). If its
///   worker dies, [`reclaim`](Self::reclaim) by any consumer takes it over once it has been
///   idle for `min_idle`, and hands it out again.
/// - [`fail`](Self::fail) makes the job available to the next reclaim at once, until it has
///   been handed out `max_deliveries` times; the failure after that moves it to the
///   dead-letter stream with its error. A job whose workers keep dying is dead-lettered by the
///   reclaim that would hand it out for the `max_deliveries + 1`-th time. Either way the move
///   is atomic with the ack, so each job is dead-lettered exactly once.
/// - Each job's state (`queued`, `running`, `completed`, `failed`, `dead`) is a key of its
///   partition, `:status:<user>:<job id>`, written by the same scripts that enqueue, ack,
///   fail and dead-letter it ([`start`](Self::start) marks it running); [`state`](Self::state)
///   reads it. It is kept for [`JobsConfig::idempotency_ttl`] after its last change.
/// - Cheap to clone (clones share the group state and the reclaim cursors); opens no
///   connection.
#[derive(Debug, Clone)]
pub struct Jobs {
    manager: RedisManager,
    queue: String,
    config: JobsConfig,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    partitions: Vec<Partition>,
    /// Where the next claim or reclaim starts among the partitions.
    rotation: AtomicUsize,
}

impl Jobs {
    /// The queue `queue` on `manager` with default settings.
    pub fn new(manager: RedisManager, queue: &str) -> Result<Jobs> {
        Jobs::with_config(manager, queue, JobsConfig::default())
    }

    /// The queue `queue` on `manager` with `config`.
    pub fn with_config(manager: RedisManager, queue: &str, config: JobsConfig) -> Result<Jobs> {
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
        if config.max_per_user == Some(0) {
            return Err(Error::invalid(
                "jobs config",
                "max_per_user must be at least 1",
            ));
        }
        if !(1..=MAX_PARTITIONS).contains(&config.partitions) {
            return Err(Error::invalid(
                "jobs config",
                format!("partitions must be between 1 and {MAX_PARTITIONS}"),
            ));
        }
        let partitions = (0..config.partitions)
            .map(|p| Partition::new(queue, p))
            .collect::<Result<Vec<_>>>()?;
        Ok(Jobs {
            manager,
            queue: queue.to_owned(),
            config,
            shared: Arc::new(Shared {
                partitions,
                rotation: AtomicUsize::new(0),
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

    /// The partition `user`'s jobs go to.
    pub fn partition_of(&self, user: &UserId) -> u32 {
        partition_of(user.as_str(), self.config.partitions)
    }

    /// Adds a job, once per idempotency key (see [`NewJob::idempotency_key`]). Fails with
    /// [`Error::QueueFull`] when the user's partition holds [`JobsConfig::max_len`] jobs
    /// already, with [`Error::UserQueueFull`] when the user holds
    /// [`JobsConfig::max_per_user`]; a repeat of an accepted idempotency key still answers
    /// its first job.
    pub async fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        keys::check_name("job kind", &job.kind)?;
        let payload = serde_json::to_string(&job.payload)?;
        let part = &self.shared.partitions[self.partition_of(&job.user) as usize];
        let mut script = ENQUEUE.key(&part.keys.stream);
        script.key(&part.keys.user_counts);
        if let Some(idem) = &job.idempotency_key {
            keys::check_name("idempotency key", idem)?;
            // User ids hold no ':', so `<user>:<key>` cannot collide across users.
            script.key(format!(
                "{}{}:{idem}",
                part.keys.idempotency_prefix, job.user
            ));
        }
        script
            .arg(job.user.as_str())
            .arg(&job.kind)
            .arg(&payload)
            .arg(job.idempotency_key.as_deref().unwrap_or_default())
            .arg(millis(self.config.idempotency_ttl))
            .arg(self.config.max_len)
            .arg(self.config.max_per_user.unwrap_or(0))
            .arg(&part.keys.status_prefix);
        let (id, status): (String, u8) = self.manager.run_script(&script).await?;
        match status {
            2 => {
                return Err(Error::QueueFull {
                    queue: self.queue.clone(),
                    max_len: self.config.max_len,
                });
            }
            3 => {
                return Err(Error::UserQueueFull {
                    queue: self.queue.clone(),
                    max_per_user: self.config.max_per_user.unwrap_or_default(),
                });
            }
            _ => {}
        }
        Ok(Enqueued {
            id,
            duplicate: status == 1,
        })
    }

    /// Hands up to `count` new jobs to `consumer`, waiting up to `block` for the first one
    /// (not at all for a zero `block`; at most 100 ms when partitioned). An empty result
    /// means none arrived in time.
    pub async fn claim(&self, consumer: &str, count: usize, block: Duration) -> Result<Vec<Job>> {
        keys::check_name("consumer", consumer)?;
        let want = count.max(1);
        let parts = &self.shared.partitions;
        if parts.len() == 1 {
            return self.read(&parts[0], consumer, want, block).await;
        }
        let mut jobs = Vec::new();
        let mut answered: Option<&Partition> = None;
        let mut failed = None;
        for part in self.rotated() {
            match self
                .read(part, consumer, want - jobs.len(), Duration::ZERO)
                .await
            {
                Ok(found) => {
                    answered.get_or_insert(part);
                    jobs.extend(found);
                }
                Err(err) => {
                    tracing::debug!(queue = %self.queue, partition = part.index, cause = %err, "partition skipped");
                    failed.get_or_insert(err);
                }
            }
            if jobs.len() >= want {
                break;
            }
        }
        match (answered, failed) {
            (None, Some(err)) => Err(err),
            (Some(part), _) if jobs.is_empty() && !block.is_zero() => {
                self.read(part, consumer, want, block.min(PARTITION_BLOCK))
                    .await
            }
            _ => Ok(jobs),
        }
    }

    /// Takes over, for `consumer`, up to `count` jobs that have been pending (claimed but not
    /// acked) for at least `min_idle`, e.g. because their worker died. Jobs delivered
    /// `max_deliveries` times already are dead-lettered instead and reported in
    /// [`Reclaimed::dead_lettered`].
    ///
    /// Each call scans a part of each partition's pending list, continuing where the
    /// previous call of this store (or a clone) stopped; call it periodically. A partition
    /// that fails is skipped while others answer.
    pub async fn reclaim(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Reclaimed> {
        keys::check_name("consumer", consumer)?;
        let want = count.max(1);
        let mut reclaimed = Reclaimed::default();
        let mut answered = false;
        let mut failed = None;
        for part in self.rotated() {
            let left = want.saturating_sub(reclaimed.jobs.len() + reclaimed.dead_lettered.len());
            if left == 0 {
                break;
            }
            match self.reclaim_partition(part, consumer, min_idle, left).await {
                Ok(found) => {
                    answered = true;
                    reclaimed.jobs.extend(found.jobs);
                    reclaimed.dead_lettered.extend(found.dead_lettered);
                }
                Err(err) => {
                    tracing::debug!(queue = %self.queue, partition = part.index, cause = %err, "partition skipped");
                    failed.get_or_insert(err);
                }
            }
        }
        match failed {
            Some(err) if !answered => Err(err),
            _ => Ok(reclaimed),
        }
    }

    /// Marks `job` done and removes it from the queue. False if it was no longer pending
    /// (already acked, or dead-lettered).
    pub async fn ack(&self, job: &Job) -> Result<bool> {
        let part = self.partition(job.partition)?;
        let acked: u64 = self
            .manager
            .run_script(
                ACK.key(&part.keys.stream)
                    .key(&part.keys.user_counts)
                    .arg(&self.config.group)
                    .arg(&job.id)
                    .arg(&part.keys.status_prefix)
                    .arg(millis(self.config.idempotency_ttl)),
            )
            .await?;
        Ok(acked > 0)
    }

    /// Records that a worker starts an attempt of `job`: its state becomes
    /// [`JobState::Running`] if it was queued or failed. False when it was not (completed,
    /// dead, or enqueued before states were recorded).
    pub async fn start(&self, job: &Job) -> Result<bool> {
        let part = self.partition(job.partition)?;
        let key = format!("{}{}:{}", part.keys.status_prefix, job.user, job.id);
        let started: u64 = self.manager.run_script(&START.key(key)).await?;
        Ok(started == 1)
    }

    /// The state of `user`'s job `id`, read from Redis; `None` when the queue has no such
    /// job of this user, or its state expired ([`JobsConfig::idempotency_ttl`] after its last
    /// change).
    pub async fn state(&self, user: &UserId, id: &str) -> Result<Option<JobState>> {
        let digits = |part: &str| {
            !part.is_empty() && part.len() <= 20 && part.bytes().all(|b| b.is_ascii_digit())
        };
        if !id
            .split_once('-')
            .is_some_and(|(ms, seq)| digits(ms) && digits(seq))
        {
            return Err(Error::invalid(
                "job id",
                format!("{id:?} is not <ms>-<seq>"),
            ));
        }
        let part = &self.shared.partitions[self.partition_of(user) as usize];
        let key = format!("{}{}:{id}", part.keys.status_prefix, user);
        let state: Option<String> = self.manager.query(redis::cmd("GET").arg(key)).await?;
        Ok(state.as_deref().and_then(JobState::parse))
    }

    /// Records that `job` failed with `error`: it is retried (handed out again by the next
    /// reclaim) unless it has been handed out `max_deliveries` times, in which case it moves
    /// to the dead-letter stream with `error`.
    pub async fn fail(&self, job: &Job, error: &str) -> Result<FailOutcome> {
        let part = self.partition(job.partition)?;
        self.fail_with_limit(
            part,
            &job.consumer,
            &job.id,
            error,
            self.config.max_deliveries,
        )
        .await
    }

    /// Up to `count` dead letters, oldest first, over all partitions.
    pub async fn dead_letters(&self, count: usize) -> Result<Vec<DeadLetter>> {
        let mut all = Vec::new();
        for part in &self.shared.partitions {
            let reply: StreamRangeReply = self
                .manager
                .query(
                    redis::cmd("XRANGE")
                        .arg(&part.keys.dead)
                        .arg("-")
                        .arg("+")
                        .arg("COUNT")
                        .arg(count.max(1)),
                )
                .await?;
            all.extend(reply.ids.into_iter().map(|entry| {
                let id = entry.id.clone();
                let mut fields = fields_of(entry);
                let job_id = fields.remove("job").unwrap_or_default();
                let deliveries = fields
                    .remove("deliveries")
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0);
                let error = fields.remove("error").unwrap_or_default();
                dead_letter(part.index, id, job_id, deliveries, error, fields)
            }));
        }
        all.sort_by_key(|dead| stream_id_order(&dead.id));
        all.truncate(count.max(1));
        Ok(all)
    }

    /// How many jobs are claimed and not yet acked, over all partitions.
    pub async fn pending(&self) -> Result<u64> {
        let mut total = 0;
        for part in &self.shared.partitions {
            let summary: Vec<Value> = self
                .with_group(part, move || async move {
                    self.manager
                        .query(
                            redis::cmd("XPENDING")
                                .arg(&part.keys.stream)
                                .arg(&self.config.group),
                        )
                        .await
                })
                .await?;
            total += summary
                .into_iter()
                .next()
                .and_then(|count| redis::from_redis_value::<u64>(count).ok())
                .unwrap_or(0);
        }
        Ok(total)
    }

    /// The partitions, starting from the next one in rotation.
    fn rotated(&self) -> impl Iterator<Item = &Partition> {
        let parts = &self.shared.partitions;
        let start = self.shared.rotation.fetch_add(1, Ordering::Relaxed) % parts.len();
        parts[start..].iter().chain(&parts[..start])
    }

    fn partition(&self, index: u32) -> Result<&Partition> {
        self.shared
            .partitions
            .get(index as usize)
            .ok_or_else(|| Error::invalid("job", format!("no partition {index} in this queue")))
    }
}

fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

/// A stream id `<ms>-<seq>` as a sortable pair (unparseable ids first).
fn stream_id_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}
