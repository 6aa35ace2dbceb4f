//! `Sessions`: server-side sessions with sliding expiry.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use redis::Script;

use super::lua::lua;
use crate::error::{Error, Result};
use crate::keys::{UserId, UserScope, family};
use crate::manager::RedisManager;

/// Default idle time after which a session expires.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(30 * 60);
/// Sessions revoked by one script call of [`Sessions::revoke_all`].
const REVOKE_BATCH: usize = 256;

/// Creates a session. KEYS: session hash, the user's session set. ARGV: id, ttl (ms), meta
/// (JSON). Returns the server time (ms) used for `created` and `last_seen`.
static CREATE: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("session_create")));

/// Slides a session's expiry. KEYS: session hash, the user's session set. ARGV: ttl (ms).
/// Returns the session's fields after the touch, or an empty list if it is gone.
static TOUCH: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("session_touch")));

/// Revokes sessions. KEYS: the user's session set, session hashes...; ARGV: their ids, in the
/// same order. Returns how many sessions existed.
static REVOKE: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("sessions_revoke")));

/// One server-side session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Random id (32 hex characters).
    pub id: String,
    /// Whose session it is.
    pub user: UserId,
    /// When it was created (Redis server time, ms precision).
    pub created: SystemTime,
    /// When it was created or last touched.
    pub last_seen: SystemTime,
    /// What the caller stored with it (user agent, IP, device name...).
    pub meta: BTreeMap<String, String>,
}

/// Server-side sessions of users, with sliding expiry.
///
/// ## Behavior
/// - A session is a hash `ssot:{u:<id>}:session:<sid>` (`created`, `last_seen`, `meta` as
///   JSON) that expires after `ttl` without a [`touch`](Sessions::touch); each touch starts
///   the idle time again.
/// - Each user has a set of their session ids, `ssot:{u:<id>}:sessions`, kept in the same
///   scripts as the hashes, so [`list`](Sessions::list) and
///   [`revoke_all`](Sessions::revoke_all) need no SCAN and work in a Redis Cluster (one hash
///   tag per user). Ids of sessions that expired are dropped from the set when listed.
/// - Session ids are 128 random bits; a caller can only name a session within a
///   [`UserScope`], so an id leaked from one user opens nothing for another.
/// - Cheap to clone; opens no connection.
#[derive(Clone, Debug)]
pub struct Sessions {
    manager: RedisManager,
    /// Idle time in milliseconds, at least 1.
    ttl_ms: u64,
}

impl Sessions {
    /// Sessions on `manager` that expire after `ttl` (at least 1 ms) without a touch.
    pub fn new(manager: RedisManager, ttl: Duration) -> Result<Sessions> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if ttl_ms == 0 {
            return Err(Error::invalid("session ttl", "must be at least 1 ms"));
        }
        Ok(Sessions { manager, ttl_ms })
    }

    /// The idle time after which a session expires.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }

    /// Creates a session for the user with `meta`.
    pub async fn create(
        &self,
        scope: &UserScope,
        meta: BTreeMap<String, String>,
    ) -> Result<Session> {
        let id = format!("{:032x}", rand::random::<u128>());
        let key = scope.named_key(family::SESSION, &id)?;
        let meta_json = serde_json::to_string(&meta)?;
        let now: u64 = self
            .manager
            .run_script(
                CREATE
                    .key(&key)
                    .key(scope.key(family::SESSIONS))
                    .arg(&id)
                    .arg(self.ttl_ms)
                    .arg(meta_json),
            )
            .await?;
        let at = crate::clock::from_unix_ms(now);
        Ok(Session {
            id,
            user: scope.user().clone(),
            created: at,
            last_seen: at,
            meta,
        })
    }

    /// The session `id` of the user, if it exists (does not extend it).
    pub async fn get(&self, scope: &UserScope, id: &str) -> Result<Option<Session>> {
        let key = scope.named_key(family::SESSION, id)?;
        let fields: HashMap<String, String> =
            self.manager.query(redis::cmd("HGETALL").arg(&key)).await?;
        parse(scope, id, fields)
    }

    /// Marks the session as used now and restarts its idle time; `None` if it is gone.
    pub async fn touch(&self, scope: &UserScope, id: &str) -> Result<Option<Session>> {
        let key = scope.named_key(family::SESSION, id)?;
        let fields: HashMap<String, String> = self
            .manager
            .run_script(
                TOUCH
                    .key(&key)
                    .key(scope.key(family::SESSIONS))
                    .arg(self.ttl_ms),
            )
            .await?;
        parse(scope, id, fields)
    }

    /// Time left before the session expires unless touched; `None` if it is gone.
    pub async fn expires_in(&self, scope: &UserScope, id: &str) -> Result<Option<Duration>> {
        let key = scope.named_key(family::SESSION, id)?;
        let ms: i64 = self.manager.query(redis::cmd("PTTL").arg(&key)).await?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    /// Revokes one session; true if it existed.
    pub async fn revoke(&self, scope: &UserScope, id: &str) -> Result<bool> {
        let key = scope.named_key(family::SESSION, id)?;
        let n: u64 = self
            .manager
            .run_script(REVOKE.key(scope.key(family::SESSIONS)).key(&key).arg(id))
            .await?;
        Ok(n > 0)
    }

    /// The user's live sessions, oldest first.
    pub async fn list(&self, scope: &UserScope) -> Result<Vec<Session>> {
        let set = scope.key(family::SESSIONS);
        let ids: Vec<String> = self.manager.query(redis::cmd("SMEMBERS").arg(&set)).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HGETALL")
                .arg(scope.named_key(family::SESSION, id)?);
        }
        let all: Vec<HashMap<String, String>> = self.manager.pipeline(&pipe).await?;
        let mut sessions = Vec::with_capacity(ids.len());
        let mut gone = Vec::new();
        for (id, fields) in ids.iter().zip(all) {
            match parse(scope, id, fields)? {
                Some(session) => sessions.push(session),
                None => gone.push(id),
            }
        }
        if !gone.is_empty() {
            // Expired on their own: forget their ids.
            self.manager
                .query::<()>(redis::cmd("SREM").arg(&set).arg(gone))
                .await?;
        }
        sessions.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(sessions)
    }

    /// Revokes every session of the user; returns how many existed. Sessions created while
    /// it runs may survive it.
    pub async fn revoke_all(&self, scope: &UserScope) -> Result<u64> {
        let set = scope.key(family::SESSIONS);
        let ids: Vec<String> = self.manager.query(redis::cmd("SMEMBERS").arg(&set)).await?;
        let mut revoked = 0;
        for batch in ids.chunks(REVOKE_BATCH) {
            let mut invocation = REVOKE.key(&set);
            for id in batch {
                invocation
                    .key(scope.named_key(family::SESSION, id)?)
                    .arg(id);
            }
            revoked += self.manager.run_script::<u64>(&invocation).await?;
        }
        Ok(revoked)
    }
}

/// A session from its hash fields; `None` when the hash is gone.
fn parse(scope: &UserScope, id: &str, fields: HashMap<String, String>) -> Result<Option<Session>> {
    if fields.is_empty() {
        return Ok(None);
    }
    let time = |name: &str| -> Result<SystemTime> {
        fields
            .get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .map(crate::clock::from_unix_ms)
            .ok_or_else(|| Error::invalid("stored session", format!("{id}: bad field {name}")))
    };
    let meta = match fields.get("meta") {
        Some(json) => serde_json::from_str(json)?,
        None => BTreeMap::new(),
    };
    Ok(Some(Session {
        id: id.to_owned(),
        user: scope.user().clone(),
        created: time("created")?,
        last_seen: time("last_seen")?,
        meta,
    }))
}
