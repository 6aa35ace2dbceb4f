//! Writes acknowledged by replicas: the write, then `WAIT`, on a connection of their own.
//!
//! ## Behavior
//! - `WAIT` confirms the writes of its own connection, and Redis holds that connection's
//!   later commands while it waits; so an acknowledged write takes a connection of the
//!   `acked` pool (`ssot:<app>:acked`, [`DEFAULT_ACKED_POOL_SIZE`] connections opened on
//!   first use) for its write and its `WAIT`, and the multiplexed command connection never
//!   stalls behind a slow replica.
//! - On a Cluster, `WAIT` goes to the master the write went to (its key's slot).
//! - Fewer acknowledgements than asked within the timeout is [`Error::NotReplicated`]: the
//!   write is on the master, and may be lost if it fails over now. A replica that is slow is
//!   not a fault of the master: the `WAIT` never counts as slow or failed in the breaker.

use std::time::Duration;

use redis::{FromRedisValue, ScriptInvocation, Value};

use super::RedisManager;
use super::call::{Lane, script_route};
use crate::domains::Route;
use crate::error::{Error, Result};

/// Connections for replica-acknowledged writes (config key to come with `[events]
/// min-replicas-acked`: `acked-pool-size`).
pub(crate) const DEFAULT_ACKED_POOL_SIZE: usize = 4;

impl RedisManager {
    /// Runs a writing script, then waits until at least `replicas` replicas acknowledged it,
    /// at most `timeout`. Fails with [`Error::NotReplicated`] when fewer did (retryable; the
    /// write itself is done, so retry with an idempotent write such as
    /// [`crate::stores::events::Events::append_once`]).
    pub async fn run_script_acked<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
        replicas: u32,
        timeout: Duration,
    ) -> Result<T> {
        let inner = &self.inner;
        let route = script_route(&inner.domains, invocation).await;
        let domain = inner.domains.resolve(route);
        let lent = self.lend(&inner.acked, &domain).await?;
        let link = lent.link();
        let budget = inner.config.command_timeout;
        let value: T = self
            .exec(
                Lane::Command,
                link,
                Some(budget),
                &domain,
                |mut conn| async move { invocation.invoke_async(&mut conn).await },
            )
            .await?;
        let wait = redis::cmd("WAIT")
            .arg(replicas)
            .arg(timeout.as_millis() as u64)
            .clone();
        let slot = match route {
            Route::Slot(slot) => Some(slot),
            Route::Keyless => None,
        };
        let wait = &wait;
        let reply = self
            .exec(
                Lane::Blocking,
                link,
                Some(timeout + budget),
                &domain,
                |mut conn| async move { conn.on_slot(wait, slot).await },
            )
            .await?;
        let acked = match reply {
            Value::Int(n) => u64::try_from(n).unwrap_or(0),
            other => {
                return Err(Error::invalid("WAIT reply", format!("{other:?}")));
            }
        };
        if acked < u64::from(replicas) {
            metrics::counter!("ssot_redis_not_replicated_total").increment(1);
            return Err(Error::NotReplicated {
                acked,
                wanted: u64::from(replicas),
                after: timeout,
            });
        }
        Ok(value)
    }
}
