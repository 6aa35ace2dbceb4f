//! The health monitor and its report.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionLike;
use serde::Serialize;
use tokio::time::Instant;

use super::{Inner, RedisManager};
use crate::breaker::BreakerState;
use crate::error::{Error, Result};

/// Health monitor interval while something is wrong, so recovery is seen quickly.
const FAST_HEALTH_INTERVAL: Duration = Duration::from_millis(100);

/// A snapshot of the manager's health.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// The manager instance.
    pub instance_id: String,
    /// True when the command connection is up, the last PING answered and the circuit is closed.
    pub healthy: bool,
    /// True when the last PING answered.
    pub reachable: bool,
    /// Round trip of the last PING, in milliseconds.
    pub latency_ms: Option<f64>,
    /// Circuit breaker state.
    pub breaker: BreakerState,
    /// True when the subscriber connection is up.
    pub subscriber_up: bool,
    /// Reconnects of the command and subscriber connections since start.
    pub reconnects: u64,
    /// The last PING error, if the last PING failed.
    pub last_error: Option<String>,
    /// When this report was made (Unix milliseconds).
    pub checked_at_ms: u64,
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// PINGs, detects hung connections, drives breaker recovery and publishes health.
pub(super) async fn health_monitor(inner: std::sync::Weak<Inner>) {
    let (mut command_up, mut breaker_rx) = match inner.upgrade() {
        Some(inner) => (inner.command.watch_up(), inner.breaker.watch()),
        None => return,
    };
    let mut was_healthy: Option<bool> = None;
    // Give the first connection its chance before judging, so a normal start does not log
    // "unhealthy".
    if let Some(this) = inner.upgrade() {
        let (command, budget) = (Arc::clone(&this.command), this.config.connect_timeout);
        drop(this);
        command.wait_up(budget).await;
    }
    loop {
        let Some(this) = inner.upgrade() else { return };
        let manager = RedisManager { inner: this };
        let inner_ref = &manager.inner;
        // Ping.
        let start = Instant::now();
        let ping: Result<String> = manager.query(&redis::cmd("PING")).await;
        let latency = start.elapsed();
        if let Err(Error::Timeout { .. }) = &ping
            && let Ok((epoch, _)) = inner_ref.command.get()
        {
            inner_ref.command.mark_down(epoch, "health ping timed out");
        }
        check_subscriber(inner_ref).await;
        if inner_ref.config.is_cluster() {
            rename_cluster_links(inner_ref).await;
        }
        let breaker = inner_ref.breaker.state();
        let reachable = ping.is_ok();
        let healthy = reachable && breaker == BreakerState::Closed && inner_ref.command.is_up();
        if reachable {
            metrics::histogram!("ssot_redis_ping_seconds").record(latency.as_secs_f64());
        }
        metrics::gauge!("ssot_redis_up").set(if healthy { 1.0 } else { 0.0 });
        // Also set here, not only on transitions, so a recorder installed after the manager
        // was built still shows it.
        metrics::gauge!("ssot_breaker_state").set(breaker.gauge());
        if was_healthy != Some(healthy) {
            match (&ping, healthy) {
                (_, true) => {
                    tracing::info!(latency_ms = latency.as_secs_f64() * 1e3, "redis healthy")
                }
                (Err(err), false) => {
                    tracing::warn!(cause = %err, breaker = breaker.as_str(), "redis unhealthy")
                }
                (Ok(_), false) => tracing::warn!(breaker = breaker.as_str(), "redis unhealthy"),
            }
            was_healthy = Some(healthy);
        }
        inner_ref.health.send_replace(HealthReport {
            instance_id: inner_ref.id.clone(),
            healthy,
            reachable,
            latency_ms: reachable.then_some(latency.as_secs_f64() * 1e3),
            breaker,
            subscriber_up: inner_ref.subscriber.is_up(),
            reconnects: inner_ref.command.reconnects() + inner_ref.subscriber.reconnects(),
            // A PING fails with "connection down" while the link reconnects; the cause of the
            // last connection attempt (refused, TLS certificate, auth) is what to show.
            last_error: ping.err().map(|e| match inner_ref.command.connect_error() {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            }),
            checked_at_ms: now_ms(),
        });
        let interval = if healthy {
            inner_ref.config.health_interval
        } else {
            inner_ref.config.health_interval.min(FAST_HEALTH_INTERVAL)
        };
        let breaker_handle = Arc::clone(&inner_ref.breaker);
        drop(manager);
        // Sleep, but wake at once when the command connection comes back (the circuit may
        // probe now) or the breaker changes.
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            changed = command_up.changed() => {
                if changed.is_err() { return; }
                if *command_up.borrow_and_update() {
                    breaker_handle.on_reconnect();
                }
            }
            changed = breaker_rx.changed() => {
                if changed.is_err() { return; }
                breaker_rx.borrow_and_update();
            }
        }
    }
}

/// A subscriber connection that does not answer PING is replaced (and resubscribed).
async fn check_subscriber(inner: &Inner) {
    let Ok((epoch, mut conn)) = inner.subscriber.get() else {
        return;
    };
    let ping = tokio::time::timeout(
        inner.config.command_timeout,
        conn.req_packed_command(&redis::cmd("PING")),
    )
    .await;
    match ping {
        Err(_) => inner.subscriber.mark_down(epoch, "health ping timed out"),
        Ok(Err(err)) => inner.subscriber.observe_error(epoch, &err),
        Ok(Ok(_)) => {}
    }
}

/// Cluster node connections may be replaced inside the cluster client; name them again.
async fn rename_cluster_links(inner: &Inner) {
    for link in [&inner.command, &inner.subscriber] {
        if let Ok((_, mut conn)) = link.get() {
            let cmd = redis::cmd("CLIENT").arg("SETNAME").arg(link.name()).clone();
            let _ =
                tokio::time::timeout(inner.config.command_timeout, conn.on_all_nodes(&cmd)).await;
        }
    }
}
