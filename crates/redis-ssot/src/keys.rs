//! The key schema: the one module that builds Redis key and channel names.
//!
//! ## Behavior
//! - A [`UserId`] is 1-128 characters of `[A-Za-z0-9_.@-]`; everything else (`:`, `*`, `?`,
//!   `[`, `{`, `}`, spaces, unicode, NUL, very long ids) is rejected with a precise error.
//!   So a user's prefix `ssot:{u:<id>}:` is never a prefix of another user's, and a SCAN
//!   pattern built from it can match only that user's keys.
//! - Every key of one user carries the hash tag `{u:<id>}`: all of a user's keys share a
//!   Cluster slot, so per-user scripts and transactions are legal there.
//! - Other names (cache keys, session ids, lock and queue names) are checked by [`check_name`]:
//!   1-256 characters of `[A-Za-z0-9_.:/@-]`, never a glob or hash-tag character.
//! - Keys shared by all users (revocations, locks, job queues) carry their own hash tag, so
//!   the few keys one script touches share a slot.

use std::fmt;

use crate::error::{Error, Result};

/// Prefix of every key this library writes.
pub const PREFIX: &str = "ssot";
const MAX_USER_ID: usize = 128;
const MAX_NAME: usize = 256;

/// A validated user id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// Validates `raw` as a user id.
    pub fn new(raw: &str) -> Result<UserId> {
        if raw.is_empty() || raw.len() > MAX_USER_ID {
            return Err(Error::invalid(
                "user id",
                format!("must be 1-{MAX_USER_ID} characters, got {}", raw.len()),
            ));
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '-')))
        {
            return Err(Error::invalid(
                "user id",
                format!("character {bad:?} not allowed; use [A-Za-z0-9_.@-]"),
            ));
        }
        Ok(UserId(raw.to_owned()))
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for UserId {
    type Err = Error;
    fn from_str(s: &str) -> Result<UserId> {
        UserId::new(s)
    }
}

/// Access to one user's keys, and only theirs. Stores take a `&UserScope` wherever they touch
/// per-user data, so code cannot name another user's key by accident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScope {
    user: UserId,
    /// `ssot:{u:<id>}:`
    prefix: String,
}

impl UserScope {
    /// The scope of `user`.
    pub fn new(user: UserId) -> UserScope {
        let prefix = format!("{PREFIX}:{{u:{}}}:", user.as_str());
        UserScope { user, prefix }
    }

    /// Validates `raw` and returns its scope.
    pub fn parse(raw: &str) -> Result<UserScope> {
        Ok(UserScope::new(UserId::new(raw)?))
    }

    /// The user.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// `ssot:{u:<id>}:<family>` — a per-user key of a family with no further name.
    pub(crate) fn key(&self, family: &str) -> String {
        format!("{}{family}", self.prefix)
    }

    /// `ssot:{u:<id>}:<family>:<name>` with `name` validated by [`check_name`].
    pub(crate) fn named_key(&self, family: &str, name: &str) -> Result<String> {
        check_name(family, name)?;
        Ok(format!("{}{family}:{name}", self.prefix))
    }

    /// Prefix of all this user's keys (`ssot:{u:<id>}:`), for checks and tests.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// Checks a non-user name (cache key, session id, lock, queue or limit name).
pub fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(Error::invalid(
            what,
            format!("name must be 1-{MAX_NAME} characters, got {}", name.len()),
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '/' | '@' | '-')))
    {
        return Err(Error::invalid(
            what,
            format!("character {bad:?} not allowed in a name; use [A-Za-z0-9_.:/@-]"),
        ));
    }
    Ok(())
}

/// Key families of per-user data.
pub(crate) mod family {
    /// `UserCache` entries.
    pub(crate) const CACHE: &str = "cache";
    /// One session hash.
    pub(crate) const SESSION: &str = "session";
    /// The set of a user's session ids.
    pub(crate) const SESSIONS: &str = "sessions";
    /// A per-user rate limit.
    pub(crate) const RATE: &str = "rl";
    /// Versioned agent run state.
    pub(crate) const AGENT: &str = "agent";
    /// The event stream (also the live channel name).
    pub(crate) const EVENTS: &str = "events";
    /// Ids of events appended once per (group, sequence), e.g. per agent job.
    pub(crate) const EVENTS_ONCE: &str = "events-once";
    /// The first id and event fingerprint of a publish made with an idempotency key.
    pub(crate) const PUBLISH_ONCE: &str = "publish-once";
}

/// `ssot:revoked:<jti>`: a revoked token id, kept until the token would expire.
pub(crate) fn revoked_token(jti: &str) -> Result<String> {
    check_name("token id", jti)?;
    Ok(format!("{PREFIX}:revoked:{jti}"))
}

/// Channel announcing revocations to every process.
pub(crate) const REVOCATIONS_CHANNEL: &str = "ssot:revocations";

/// `ssot:rl:{<name>:<subject>}`: a rate limit not tied to one user.
pub(crate) fn global_rate(name: &str, subject: &str) -> Result<String> {
    check_name("rate limit", name)?;
    check_name("rate limit subject", subject)?;
    Ok(format!("{PREFIX}:rl:{{{name}:{subject}}}"))
}

/// The lease and fencing counter of a lock: `ssot:{lock:<name>}` and `ssot:{lock:<name>}:fence`.
pub(crate) fn lock(name: &str) -> Result<(String, String)> {
    check_name("lock", name)?;
    let base = format!("{PREFIX}:{{lock:{name}}}");
    Ok((base.clone(), format!("{base}:fence")))
}

/// The presence keys (hash tag `{presence}`): the sorted set of live gateways (score: when
/// each one's report expires) and the prefix of each gateway's hash `user -> sockets`.
pub(crate) const PRESENCE_GATEWAYS: &str = "ssot:{presence}:gateways";
/// Prefix of one gateway's presence hash: `ssot:{presence}:gw:<gateway id>`.
pub(crate) const PRESENCE_GATEWAY_PREFIX: &str = "ssot:{presence}:gw:";

/// Keys of one job queue, sharing the hash tag `{jobs:<queue>}`.
#[derive(Debug, Clone)]
pub(crate) struct QueueKeys {
    /// The job stream.
    pub(crate) stream: String,
    /// Dead letters.
    pub(crate) dead: String,
    /// Prefix of idempotency markers (`<prefix><key>`).
    pub(crate) idempotency_prefix: String,
    /// Jobs in the stream per user: a hash, field the user id (absent at zero).
    pub(crate) user_counts: String,
    /// Prefix of job states (`<prefix><user>:<job id>`, see `stores/lua/jobs_status.lua`).
    pub(crate) status_prefix: String,
}

/// Keys of partition `partition` of queue `name`: hash tag `{jobs:<name>}` for partition 0
/// (the keys of an unpartitioned queue), `{jobs:<name>#<partition>}` for the others. `#` is
/// not allowed in names, so no queue's partition can meet another queue's keys.
pub(crate) fn queue(name: &str, partition: u32) -> Result<QueueKeys> {
    check_name("queue", name)?;
    let base = match partition {
        0 => format!("{PREFIX}:{{jobs:{name}}}"),
        p => format!("{PREFIX}:{{jobs:{name}#{p}}}"),
    };
    Ok(QueueKeys {
        stream: format!("{base}:stream"),
        dead: format!("{base}:dead"),
        idempotency_prefix: format!("{base}:idem:"),
        user_counts: format!("{base}:users"),
        status_prefix: format!("{base}:status:"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_user_ids_are_rejected() {
        let long = "a".repeat(10 * 1024);
        for raw in [
            "", "a:b", "*", "a*", "{x}", "}{", "a b", "é", "a\0b", "a?", "[a]", "a\\b", &long,
        ] {
            assert!(UserId::new(raw).is_err(), "{raw:?} accepted");
        }
        for raw in ["alice", "user-1", "a.b", "x@y.z", "..", "A_9"] {
            assert!(UserId::new(raw).is_ok(), "{raw:?} rejected");
        }
    }

    #[test]
    fn scopes_do_not_prefix_each_other() {
        let a = UserScope::parse("a").unwrap();
        let ab = UserScope::parse("ab").unwrap();
        assert!(!ab.prefix().starts_with(a.prefix()));
        assert_eq!(a.key(family::EVENTS), "ssot:{u:a}:events");
    }

    #[test]
    fn names_are_checked() {
        let a = UserScope::parse("a").unwrap();
        assert!(a.named_key(family::CACHE, "profile:v1").is_ok());
        for bad in ["", "*", "a b", "{x}", "x]"] {
            assert!(a.named_key(family::CACHE, bad).is_err(), "{bad:?}");
        }
        assert_eq!(lock("nightly").unwrap().1, "ssot:{lock:nightly}:fence");
    }
}
