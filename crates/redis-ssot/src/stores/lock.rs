//! Lease locks with fencing tokens, for work that must run once at a time (scheduled jobs).

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use tokio::time::Instant;

use super::lua::lua;
use crate::error::{Error, Result};
use crate::keys;
use crate::manager::RedisManager;

/// Takes the lock if free. KEYS[1] the lease, KEYS[2] the fencing counter; ARGV holder,
/// lease in ms. Returns the new fencing token, or false when the lock is held.
///
/// The token is the counter + 1, but never below the server clock in microseconds, so tokens
/// keep increasing even when a restart without persistence lost the counter.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("lock_acquire")));

/// Extends the lease if still ours. KEYS[1] the lease; ARGV `<token>:<holder>`, lease in ms.
static RENEW: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("lock_renew")));

/// Frees the lock if still ours. KEYS[1] the lease; ARGV `<token>:<holder>`.
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(lua!("lock_release")));

/// A held lock: proof of one acquisition, with its fencing token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lock.
    pub name: String,
    /// Who acquired it.
    pub holder: String,
    /// The fencing token: strictly greater than every token of an earlier acquisition of this
    /// lock. Pass it to whatever the lock protects, which should refuse smaller tokens.
    pub token: u64,
    /// When the lease ends at the latest, measured from just before the acquire or renew
    /// request was sent (so never later than Redis's own expiry).
    pub expires_at: Instant,
}

impl Lease {
    /// The value stored in the lease key: unique per acquisition.
    fn stamp(&self) -> String {
        format!("{}:{}", self.token, self.holder)
    }
}

/// Lease locks with fencing tokens.
///
/// ## Behavior
/// - A lock is a key `ssot:{lock:<name>}` set with `NX PX`; its fencing counter
///   `ssot:{lock:<name>}:fence` shares the hash tag. Acquire takes both in one script.
/// - [`acquire`](Self::acquire) returns `None` while someone else holds the lock; it never waits.
/// - Fencing tokens strictly increase across acquisitions of one lock; they are also kept
///   above the server clock in microseconds, so they still increase after a restart that
///   lost the counter (as long as the server clock does not go back).
/// - [`renew`](Self::renew) and [`release`](Self::release) act only if the lease stored in
///   Redis is still this acquisition (same token and holder), checked atomically by script.
///   Otherwise — the lease expired, or another holder has the lock now — they fail with
///   [`Error::LockLost`], never a silent success.
/// - [`with_lock`](Self::with_lock) runs a future under the lock, renews it in the background
///   and cancels the future if the lease is lost.
/// - Cheap to clone; opens no connection.
#[derive(Debug, Clone)]
pub struct Locks {
    manager: RedisManager,
}

impl Locks {
    /// The locks on `manager`.
    pub fn new(manager: RedisManager) -> Locks {
        Locks { manager }
    }

    /// Takes lock `name` for `holder` for `lease` (at least 1 ms), or returns `None` if it is
    /// held.
    pub async fn acquire(
        &self,
        name: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<Option<Lease>> {
        let (key, fence) = keys::lock(name)?;
        keys::check_name("lock holder", holder)?;
        let sent = Instant::now();
        let token: Option<u64> = self
            .manager
            .run_script(
                ACQUIRE
                    .key(&key)
                    .key(&fence)
                    .arg(holder)
                    .arg(lease_ms(lease)),
            )
            .await?;
        Ok(token.map(|token| Lease {
            name: name.to_owned(),
            holder: holder.to_owned(),
            token,
            expires_at: sent + lease,
        }))
    }

    /// Extends `lease` to end `ttl` from now; fails with [`Error::LockLost`] if it is no
    /// longer held.
    pub async fn renew(&self, lease: &mut Lease, ttl: Duration) -> Result<()> {
        let (key, _) = keys::lock(&lease.name)?;
        let sent = Instant::now();
        let renewed: u8 = self
            .manager
            .run_script(RENEW.key(&key).arg(lease.stamp()).arg(lease_ms(ttl)))
            .await?;
        if renewed == 1 {
            lease.expires_at = sent + ttl;
            Ok(())
        } else {
            Err(lost(&lease.name))
        }
    }

    /// Frees the lock; fails with [`Error::LockLost`] if `lease` no longer holds it.
    pub async fn release(&self, lease: Lease) -> Result<()> {
        let (key, _) = keys::lock(&lease.name)?;
        let released: u8 = self
            .manager
            .run_script(RELEASE.key(&key).arg(lease.stamp()))
            .await?;
        if released == 1 {
            Ok(())
        } else {
            Err(lost(&lease.name))
        }
    }

    /// Runs `work(token)` while holding lock `name`, renewing the lease every third of
    /// `lease`. Returns `Ok(None)` without running `work` if the lock is held elsewhere.
    ///
    /// If the lease is lost — a renewal finds another holder, or renewals keep failing until
    /// the lease runs out — `work` is dropped (cancelled) at that point and the result is
    /// [`Error::LockLost`]. After `work` finishes the lock is released.
    pub async fn with_lock<T, F, Fut>(
        &self,
        name: &str,
        holder: &str,
        lease: Duration,
        work: F,
    ) -> Result<Option<T>>
    where
        F: FnOnce(u64) -> Fut,
        Fut: Future<Output = T>,
    {
        let Some(mut held) = self.acquire(name, holder, lease).await? else {
            return Ok(None);
        };
        let work = work(held.token);
        let outcome = {
            let keep = self.keep_alive(&mut held, lease);
            tokio::pin!(work, keep);
            tokio::select! {
                value = &mut work => value,
                reason = &mut keep => return Err(reason),
            }
        };
        match self.release(held).await {
            Ok(()) => Ok(Some(outcome)),
            // The work is done and the lease expires on its own.
            Err(err) if err.is_transient() => {
                tracing::warn!(lock = name, cause = %err, "lock release failed");
                Ok(Some(outcome))
            }
            Err(err) => Err(err),
        }
    }

    /// Renews `held` until it is lost; returns the reason.
    async fn keep_alive(&self, held: &mut Lease, lease: Duration) -> Error {
        let period = (lease / 3).max(Duration::from_millis(1));
        loop {
            tokio::time::sleep(period).await;
            match self.renew(held, lease).await {
                Ok(()) => {}
                Err(err @ Error::LockLost { .. }) => return err,
                Err(err) if Instant::now() >= held.expires_at => {
                    tracing::warn!(lock = %held.name, cause = %err, "lock lease ran out");
                    return lost(&held.name);
                }
                Err(err) => {
                    tracing::warn!(lock = %held.name, cause = %err, "lock renewal failed; retrying");
                }
            }
        }
    }
}

fn lost(name: &str) -> Error {
    Error::LockLost {
        name: name.to_owned(),
    }
}

fn lease_ms(lease: Duration) -> u64 {
    (lease.as_millis() as u64).max(1)
}
