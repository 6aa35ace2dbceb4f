//! Versioned state of agent runs, written by compare-and-set.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::lua::lua;
use crate::error::{Error, Result};
use crate::keys::{UserScope, family};
use crate::manager::RedisManager;

/// How long a run's state lives after its last write, unless set with [`AgentState::with_ttl`].
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Compare-and-set: KEYS[1] the state hash; ARGV expected version, JSON value, TTL in ms.
/// Returns `{1, new_version}` on success, `{0, current_version}` on conflict.
static PUT: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("agent_state_compare_and_set")));

/// A value with the version it was stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The version: 1 after the first write, +1 per write.
    pub version: u64,
    /// The value.
    pub value: T,
}

/// The state of agent runs, one JSON value per user and run, changed only by compare-and-set.
///
/// ## Behavior
/// - A run's state is a hash `ssot:{u:<id>}:agent:<run>` with fields `version` and `value`
///   (JSON), reachable only through the owner's [`UserScope`].
/// - [`put`](Self::put) writes only if the stored version equals the expected one (0: only if
///   absent), in one script, and returns the new version; otherwise it fails with
///   [`Error::Conflict`] carrying the version found, and changes nothing.
/// - Each write refreshes the TTL; state untouched for the TTL disappears.
/// - After [`delete`](Self::delete) (or expiry) versions start again from 1, so a writer must
///   not keep a version across a delete.
/// - Cheap to clone; opens no connection (calls go through the [`RedisManager`]).
#[derive(Debug, Clone)]
pub struct AgentState {
    manager: RedisManager,
    ttl: Duration,
}

impl AgentState {
    /// A store on `manager` with [`DEFAULT_TTL`].
    pub fn new(manager: RedisManager) -> AgentState {
        AgentState {
            manager,
            ttl: DEFAULT_TTL,
        }
    }

    /// The same store with another TTL (at least 1 ms).
    pub fn with_ttl(self, ttl: Duration) -> AgentState {
        AgentState {
            ttl: ttl.max(Duration::from_millis(1)),
            ..self
        }
    }

    /// The state of `run`, or `None` when there is none.
    pub async fn get<T: DeserializeOwned>(
        &self,
        scope: &UserScope,
        run: &str,
    ) -> Result<Option<Versioned<T>>> {
        let key = scope.named_key(family::AGENT, run)?;
        let (version, value): (Option<u64>, Option<String>) = self
            .manager
            .query(redis::cmd("HMGET").arg(&key).arg("version").arg("value"))
            .await?;
        match (version, value) {
            (Some(version), Some(value)) => Ok(Some(Versioned {
                version,
                value: serde_json::from_str(&value)?,
            })),
            _ => Ok(None),
        }
    }

    /// Stores `value` if the stored version is `expected_version` (0: only if there is no
    /// state yet) and returns the new version; [`Error::Conflict`] otherwise.
    pub async fn put<T: Serialize + ?Sized>(
        &self,
        scope: &UserScope,
        run: &str,
        expected_version: u64,
        value: &T,
    ) -> Result<u64> {
        let key = scope.named_key(family::AGENT, run)?;
        let json = serde_json::to_string(value)?;
        let (stored, version): (u8, u64) = self
            .manager
            .run_script(
                PUT.key(&key)
                    .arg(expected_version)
                    .arg(json)
                    .arg(self.ttl.as_millis() as u64),
            )
            .await?;
        if stored == 1 {
            Ok(version)
        } else {
            Err(Error::Conflict {
                expected: expected_version,
                current: version,
            })
        }
    }

    /// Deletes the state of `run`; true if there was one.
    pub async fn delete(&self, scope: &UserScope, run: &str) -> Result<bool> {
        let key = scope.named_key(family::AGENT, run)?;
        let removed: u64 = self.manager.query(redis::cmd("DEL").arg(&key)).await?;
        Ok(removed > 0)
    }
}
