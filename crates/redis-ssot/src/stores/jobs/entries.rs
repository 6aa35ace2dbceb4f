//! What the queue hands in and out: jobs to enqueue, jobs claimed, dead letters, and how they
//! are read from stream entries.

use std::collections::HashMap;

use redis::streams::StreamId;

use crate::keys::UserId;

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// The user the job works for.
    pub user: UserId,
    /// What to do (`chat`, `nightly-report`...); a name as checked by [`check_name`](crate::keys::check_name).
    pub kind: String,
    /// Input of the job.
    pub payload: serde_json::Value,
    /// Enqueue at most once per user and key while the key is remembered (e.g. the client's
    /// message id).
    pub idempotency_key: Option<String>,
}

/// The result of [`Jobs::enqueue`](super::Jobs::enqueue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// The job id (the stream entry id).
    pub id: String,
    /// True when the idempotency key was seen before: `id` is the job enqueued then, and
    /// nothing was added.
    pub duplicate: bool,
}

/// A job handed to a consumer, to [`ack`](super::Jobs::ack) or [`fail`](super::Jobs::fail).
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The job id: stable across deliveries. Unique within its partition (and so among one
    /// user's jobs); in a partitioned queue `(partition, id)` is unique queue-wide.
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
    pub(super) consumer: String,
    /// The partition of the queue it lives in.
    pub(super) partition: u32,
}

impl Job {
    /// The consumer this delivery went to.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The partition of the queue it lives in (0 in an unpartitioned queue).
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// A job as a consumer would get it, for unit tests of code that reads jobs.
    #[cfg(test)]
    pub(crate) fn for_test(kind: String, payload: serde_json::Value) -> Job {
        Job {
            id: "1-0".into(),
            user: UserId::new("test").expect("a valid user id"),
            kind,
            payload,
            idempotency_key: None,
            deliveries: 1,
            consumer: "test".into(),
            partition: 0,
        }
    }
}

/// A job moved to the dead-letter stream.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The partition whose dead-letter stream holds it.
    pub partition: u32,
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

/// The result of [`Jobs::fail`](super::Jobs::fail).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FailOutcome {
    /// The job stays in the queue and is handed out again by the next [`Jobs::reclaim`](super::Jobs::reclaim).
    Retry,
    /// The job used up its deliveries and is now a dead letter (this call moved it, and no
    /// other call will).
    DeadLettered(DeadLetter),
    /// This consumer no longer holds the job (it was acked, reclaimed by another consumer or
    /// dead-lettered); nothing changed.
    NotHeld,
}

/// What one [`Jobs::reclaim`](super::Jobs::reclaim) call took over.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reclaimed {
    /// Jobs now held by the calling consumer.
    pub jobs: Vec<Job>,
    /// Jobs that had used up their deliveries and were moved to the dead-letter stream by
    /// this call (reported once, here).
    pub dead_lettered: Vec<DeadLetter>,
}

/// Parsed `{id, deliveries, {fields}}` from the reclaim script.
pub(super) type ClaimedRow = (String, u64, Vec<String>);
/// Parsed `{dead_id, job_id, deliveries, reason, {fields}}` from the bury function.
pub(super) type DeadRow = (String, String, u64, String, Vec<String>);

/// Field/value pairs of a stream entry, as strings.
pub(super) fn fields_of(entry: StreamId) -> HashMap<String, String> {
    entry
        .map
        .into_iter()
        .filter_map(|(k, v)| redis::from_redis_value::<String>(v).ok().map(|v| (k, v)))
        .collect()
}

/// `[f1, v1, f2, v2, ...]` as a map.
pub(super) fn pairs(flat: Vec<String>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    map
}

pub(super) fn job_from_fields(
    id: String,
    deliveries: u64,
    consumer: &str,
    partition: u32,
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
        partition,
    })
}

pub(super) fn dead_letter_from_row(
    partition: u32,
    (id, job_id, deliveries, error, fields): DeadRow,
) -> DeadLetter {
    dead_letter(partition, id, job_id, deliveries, error, pairs(fields))
}

pub(super) fn dead_letter(
    partition: u32,
    id: String,
    job_id: String,
    deliveries: u64,
    error: String,
    mut fields: HashMap<String, String>,
) -> DeadLetter {
    DeadLetter {
        partition,
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
