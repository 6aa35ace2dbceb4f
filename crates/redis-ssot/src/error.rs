//! The one error type of the library, with classification.

use std::time::Duration;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when talking to Redis through the manager.
///
/// Classify with [`Error::is_transient`] (worth retrying later) and
/// [`Error::retry_after`] (how long to wait first).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid; `key` names the setting, `reason` what is wrong.
    #[error("invalid configuration: {key}: {reason}")]
    Config {
        /// The setting, as the user wrote it (`redis.command-timeout-ms`, `REDIS_URL`).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Redis cannot be used right now (circuit open, connection down, pool exhausted).
    /// Fails at once instead of hanging.
    #[error("redis unavailable ({reason}); retry after {retry_after:?}")]
    Unavailable {
        /// A hint for when a retry may succeed.
        retry_after: Duration,
        /// Why it is unavailable: `circuit open`, `connection down`, `blocking pool exhausted`.
        reason: &'static str,
    },
    /// The command did not answer within its budget.
    #[error("redis command timed out after {after:?}")]
    Timeout {
        /// The budget that ran out.
        after: Duration,
    },
    /// A write was not acknowledged by enough replicas within its timeout (`WAIT`). The write
    /// is on the master, and may be lost if the master fails over before replicating it.
    /// Retryable; retry with an idempotent write, since the first one may survive.
    #[error("write acknowledged by {acked} of {wanted} replicas within {after:?}")]
    NotReplicated {
        /// Replicas that acknowledged.
        acked: u64,
        /// Replicas asked for (`min-replicas-acked`).
        wanted: u64,
        /// The `WAIT` timeout.
        after: Duration,
    },
    /// An idempotency key was used before with a different event; nothing was stored.
    /// Not retryable: the caller reuses a key for a new event, which is a bug on its side.
    #[error("idempotency key {key:?} was used for a different event (first stored as {first})")]
    IdempotencyConflict {
        /// The key.
        key: String,
        /// The id the key's first event was stored under.
        first: String,
    },
    /// Input that cannot be used (a user id, name or value); `what` names it.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid: `user id`, `cache`, `lock`, `event`...
        what: String,
        /// Why.
        reason: String,
    },
    /// A compare-and-set lost: the stored version is not the expected one.
    #[error("version conflict: expected {expected}, found {current}")]
    Conflict {
        /// The version the caller expected.
        expected: u64,
        /// The version stored now (0 when absent).
        current: u64,
    },
    /// The caller no longer holds the lock (its lease expired or another holder took it).
    #[error("lock {name:?} is not held by this holder (lease expired or taken over)")]
    LockLost {
        /// The lock.
        name: String,
    },
    /// A job queue's backlog (jobs enqueued and not yet acked) reached its bound
    /// ([`JobsConfig::max_len`](crate::stores::jobs::JobsConfig::max_len)), so the job was
    /// refused rather than accepted and trimmed later. Not a Redis fault: retry after
    /// [`Error::retry_after`], once workers have caught up.
    #[error("job queue {queue:?} is full ({max_len} jobs waiting); retry later")]
    QueueFull {
        /// The queue.
        queue: String,
        /// Its bound (per partition).
        max_len: u64,
    },
    /// The user already has
    /// [`JobsConfig::max_per_user`](crate::stores::jobs::JobsConfig::max_per_user) jobs in
    /// the queue (enqueued and not yet acked or dead-lettered), so one user cannot fill the
    /// backlog everyone shares. Not a Redis fault: retry after [`Error::retry_after`], once
    /// their jobs have run.
    #[error("job queue {queue:?} holds {max_per_user} jobs of this user already; retry later")]
    UserQueueFull {
        /// The queue.
        queue: String,
        /// The bound per user.
        max_per_user: u64,
    },
    /// A token was rejected.
    #[error("token rejected: {0}")]
    Token(#[from] crate::stores::tokens::TokenError),
    /// A stored value could not be (de)serialised.
    #[error("bad stored value: {0}")]
    Json(#[from] serde_json::Error),
    /// An error reported by Redis or the client library.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// How long to suggest waiting after a timeout.
const TIMEOUT_RETRY_AFTER: Duration = Duration::from_millis(100);
/// How long to suggest waiting when a job queue is full: workers need time to catch up.
const QUEUE_FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

impl Error {
    /// True when retrying later may succeed: Redis was down, slow, or busy.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unavailable { .. } | Error::Timeout { .. } | Error::NotReplicated { .. } => true,
            Error::Redis(err) => is_transient_redis(err),
            _ => false,
        }
    }

    /// When to retry, if the error says so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Unavailable { retry_after, .. } => Some(*retry_after),
            Error::Timeout { .. } | Error::NotReplicated { .. } => Some(TIMEOUT_RETRY_AFTER),
            Error::QueueFull { .. } | Error::UserQueueFull { .. } => Some(QUEUE_FULL_RETRY_AFTER),
            Error::Redis(err) if is_transient_redis(err) => Some(TIMEOUT_RETRY_AFTER),
            _ => None,
        }
    }

    pub(crate) fn invalid(what: &str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Connection-level failures and the server's "busy, come back" answers.
pub(crate) fn is_transient_redis(err: &redis::RedisError) -> bool {
    use redis::ErrorKind;
    use redis::ServerErrorKind;
    if err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
        || err.is_cluster_error()
    {
        return true;
    }
    matches!(
        err.kind(),
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::Moved
                | ServerErrorKind::Ask
        )
    )
}
