//! `UserCache`: a per-user cache reachable only through a [`UserScope`].

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::lua::lua;
use crate::error::{Error, Result};
use crate::keys::{UserScope, family};
use crate::manager::RedisManager;

/// Entries deleted by one script call of [`UserCache::clear`].
const CLEAR_BATCH: usize = 256;

/// Writes an entry and records it in the user's index, in one step.
///
/// KEYS: entry, index. ARGV: value, ttl (ms), name. The index is a sorted set of entry names
/// scored by their expiry (server time, ms); names of expired entries are dropped here, so
/// the index holds no more than the user's live entries, and it expires with the last one.
static SET: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("cache_set")));

/// Deletes entries and their index records. KEYS: index, entries...; ARGV: the entries' names,
/// in the same order. Returns how many entries existed.
static DELETE: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("cache_delete")));

/// A per-user cache of bytes or JSON values with a TTL on every entry.
///
/// Every method takes the [`UserScope`] of the user whose entries it touches and a name
/// checked by [`crate::keys::check_name`]; there is no way to pass a raw key, so one user's
/// code path cannot reach another user's entries.
///
/// ## Behavior
/// - An entry lives at `ssot:{u:<id>}:cache:<name>` and always has a TTL.
/// - [`clear`](UserCache::clear) does not SCAN: in a Redis Cluster a SCAN through the manager
///   is not routed to the node owning the user's slot, and a SCAN is O(keyspace) anyway.
///   Instead each user has an index (`ssot:{u:<id>}:cache`, a sorted set of names scored by
///   expiry) that [`set`](UserCache::set) and [`delete`](UserCache::delete) maintain in the
///   same script as the entry. All of it shares the user's hash tag, so the scripts are legal
///   in a cluster. Entries written while a `clear` runs may survive it.
/// - Values are stored as given; [`get_json`](UserCache::get_json) /
///   [`set_json`](UserCache::set_json) (de)serialise with `serde_json`.
/// - Cheap to clone; opens no connection; every call goes through the manager.
#[derive(Clone, Debug)]
pub struct UserCache {
    manager: RedisManager,
}

impl UserCache {
    /// A cache on `manager`.
    pub fn new(manager: RedisManager) -> UserCache {
        UserCache { manager }
    }

    /// The value of `name`, if present.
    pub async fn get(&self, scope: &UserScope, name: &str) -> Result<Option<Vec<u8>>> {
        let key = entry_key(scope, name)?;
        self.manager.query(redis::cmd("GET").arg(&key)).await
    }

    /// Stores `value` under `name` for `ttl` (at least 1 ms), replacing any earlier value.
    pub async fn set(
        &self,
        scope: &UserScope,
        name: &str,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> Result<()> {
        let key = entry_key(scope, name)?;
        let ttl_ms = ttl_millis(ttl)?;
        self.manager
            .run_script::<i64>(
                SET.key(&key)
                    .key(index_key(scope))
                    .arg(value.as_ref())
                    .arg(ttl_ms)
                    .arg(name),
            )
            .await?;
        Ok(())
    }

    /// The value of `name` deserialised from JSON, if present.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        scope: &UserScope,
        name: &str,
    ) -> Result<Option<T>> {
        match self.get(scope, name).await? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Stores `value` as JSON under `name` for `ttl`.
    pub async fn set_json<T: Serialize + ?Sized>(
        &self,
        scope: &UserScope,
        name: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(value)?;
        self.set(scope, name, bytes, ttl).await
    }

    /// Deletes `name`; true if it existed.
    pub async fn delete(&self, scope: &UserScope, name: &str) -> Result<bool> {
        let key = entry_key(scope, name)?;
        let n: i64 = self
            .manager
            .run_script(DELETE.key(index_key(scope)).key(&key).arg(name))
            .await?;
        Ok(n > 0)
    }

    /// Whether `name` is present.
    pub async fn exists(&self, scope: &UserScope, name: &str) -> Result<bool> {
        let key = entry_key(scope, name)?;
        let n: i64 = self.manager.query(redis::cmd("EXISTS").arg(&key)).await?;
        Ok(n > 0)
    }

    /// Time left before `name` expires; `None` if it is absent.
    pub async fn ttl(&self, scope: &UserScope, name: &str) -> Result<Option<Duration>> {
        let key = entry_key(scope, name)?;
        let ms: i64 = self.manager.query(redis::cmd("PTTL").arg(&key)).await?;
        // -2: absent. -1 (no expiry) cannot happen for entries written here.
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    /// Deletes every entry of the user; returns how many existed.
    pub async fn clear(&self, scope: &UserScope) -> Result<u64> {
        let index = index_key(scope);
        let names: Vec<String> = self
            .manager
            .query(redis::cmd("ZRANGE").arg(&index).arg(0).arg(-1))
            .await?;
        let mut deleted = 0;
        for batch in names.chunks(CLEAR_BATCH) {
            let mut invocation = DELETE.key(&index);
            for name in batch {
                // Re-validated: a name in the index can only ever name this user's entry.
                invocation.key(entry_key(scope, name)?).arg(name);
            }
            deleted += self.manager.run_script::<u64>(&invocation).await?;
        }
        Ok(deleted)
    }
}

fn entry_key(scope: &UserScope, name: &str) -> Result<String> {
    scope.named_key(family::CACHE, name)
}

/// `ssot:{u:<id>}:cache`: never equal to an entry key, which always has `:<name>` after it.
fn index_key(scope: &UserScope) -> String {
    scope.key(family::CACHE)
}

fn ttl_millis(ttl: Duration) -> Result<u64> {
    match u64::try_from(ttl.as_millis()) {
        Ok(ms) if ms > 0 => Ok(ms),
        _ => Err(Error::invalid(
            "cache ttl",
            format!("must be between 1 ms and u64::MAX ms, got {ttl:?}"),
        )),
    }
}
